//! `/settings/floor-plans` (admins only): the floor plan of each site — upload a PNG or JPEG,
//! outline the configured zones on it (corners typed in, or clicked on the image with
//! `floor_plan_editor.js`), change or remove it. Every problem is said on the page with what
//! was typed kept; nothing is saved from a form with a problem. `/floor-plans/{id}` serves a
//! plan's image to any logged-in user (the call page shows it). See [`crate::web::floor_plan`].

use std::sync::Arc;

use askama::Template;
use warp::filters::BoxedFilter;
use warp::http::header;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

use super::{csrf_ok, field, Form, Layout};
use crate::web::floor_plan::edit::{self, Submission};
use crate::web::floor_plan::outline::{self, ZoneOutline};
use crate::web::floor_plan::{image, FloorPlans};
use crate::web::respond::{self, Audience};
use crate::web::session::{Role, Session};
use crate::web::state::{Caller, Web};
use crate::web::upload;

/// Largest upload body read (the image's own limit, [`image::MAX_BYTES`], is checked after
/// reading, so a somewhat larger file is refused on the page, in words).
const BODY_LIMIT: u64 = 8 * 1024 * 1024;
/// Most of a refused upload read (and dropped) before the page answers.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// One kept plan, as its form shows it.
struct PlanForm {
    id: String,
    site: String,
    width: u32,
    height: u32,
    zones: Vec<ZoneOutline>,
    /// The outlines as text (or, after a problem with this plan's form, what was sent).
    zones_text: String,
    /// Outlined zones the configuration no longer has (renamed or removed).
    unconfigured: Vec<String>,
    updated: String,
    updated_by: String,
}

/// What a form with problems sent, shown again.
#[derive(Default)]
struct Draft {
    /// The plan the form changed; `None`: the new-plan form.
    plan: Option<String>,
    site: String,
    zones: String,
}

#[derive(Template)]
#[template(path = "floor_plans.html")]
struct FloorPlansPage {
    layout: Layout,
    /// The configured zone names.
    zones: Vec<String>,
    plans: Vec<PlanForm>,
    notice: Option<String>,
    problems: Vec<String>,
    /// The new-plan form's fields.
    new_site: String,
    new_zones: String,
    max_image: String,
}

/// The routes: the page, saving (an upload), removing, and a plan's image.
pub fn routes(ctx: BoxedFilter<(Arc<Web>, Caller)>) -> BoxedFilter<(Response,)> {
    let page = warp::get()
        .and(warp::path!("settings" / "floor-plans"))
        .and(ctx.clone())
        .map(|w: Arc<Web>, c: Caller| show(&w, &c));
    let save_plan = warp::post()
        .and(warp::path!("settings" / "floor-plans"))
        .and(ctx.clone())
        .and(warp::multipart::form().max_length(BODY_LIMIT))
        .then(save);
    // What the upload filter refused (a body over the limit, not multipart): said on the page.
    let unreadable = warp::post()
        .and(warp::path!("settings" / "floor-plans"))
        .and(ctx.clone())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(refused_upload);
    let remove_plan = warp::post()
        .and(warp::path!("settings" / "floor-plans" / "remove"))
        .and(ctx.clone())
        .and(warp::body::content_length_limit(16 * 1024))
        .and(warp::body::form::<Form>())
        .map(remove);
    let image = warp::get()
        .and(warp::path!("floor-plans" / String))
        .and(ctx)
        .map(|id: String, w: Arc<Web>, c: Caller| image(&w, &c, &id));
    page.or(save_plan)
        .unify()
        .or(unreadable)
        .unify()
        .or(remove_plan)
        .unify()
        .or(image)
        .unify()
        .boxed()
}

pub fn show(web: &Web, caller: &Caller) -> Response {
    match web.require(caller, Role::Admin, Audience::Page) {
        Ok(session) => page(
            web,
            &session,
            None,
            Vec::new(),
            Draft::default(),
            StatusCode::OK,
        ),
        Err(refused) => refused,
    }
}

fn page(
    web: &Web,
    session: &Session,
    notice: Option<String>,
    problems: Vec<String>,
    draft: Draft,
    status: StatusCode,
) -> Response {
    let plans = FloorPlans::of(&web.context.store)
        .all()
        .into_iter()
        .map(|plan| {
            let mine = draft.plan.as_deref() == Some(plan.id.as_str());
            PlanForm {
                zones_text: if mine {
                    draft.zones.clone()
                } else {
                    outline::to_text(&plan.zones)
                },
                site: if mine {
                    draft.site.clone()
                } else {
                    plan.site.clone()
                },
                unconfigured: plan.unconfigured(&web.zones),
                id: plan.id,
                width: plan.width,
                height: plan.height,
                zones: plan.zones,
                updated: super::time(plan.updated_at),
                updated_by: plan.updated_by,
            }
        })
        .collect();
    let (new_site, new_zones) = match draft.plan {
        None => (draft.site, draft.zones),
        Some(_) => Default::default(),
    };
    respond::page_with_status(
        &FloorPlansPage {
            layout: Layout::new("Floor plans", "settings", session),
            zones: web.zones.clone(),
            plans,
            notice,
            problems,
            new_site,
            new_zones,
            max_image: format!("{} MB", image::MAX_BYTES / (1024 * 1024)),
        },
        status,
    )
}

/// Saves a new plan or changes to one (a multipart form: `csrf`, `plan` when changing one,
/// `site`, `image`, `zones`).
pub async fn save(web: Arc<Web>, caller: Caller, form: warp::multipart::FormData) -> Response {
    // The session before the body: only an admin's upload is read.
    let session = match web.require(&caller, Role::Admin, Audience::Page) {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let upload = match upload::read(form).await {
        Ok(upload) => upload,
        Err(problem) => {
            return page(
                &web,
                &session,
                None,
                vec![problem],
                Draft::default(),
                StatusCode::BAD_REQUEST,
            )
        }
    };
    if !csrf_ok(&session, &upload.fields) {
        return respond::csrf_refused();
    }
    let fields = &upload.fields;
    let plan_id = Some(field(fields, "plan")).filter(|id| !id.is_empty());
    let image_bytes = upload
        .files
        .get("image")
        .map(Vec::as_slice)
        .filter(|b| !b.is_empty());
    let submission = Submission {
        plan: plan_id,
        site: field(fields, "site"),
        image: image_bytes,
        zones: fields.get("zones").map(String::as_str).unwrap_or(""),
    };
    let plans = FloorPlans::of(&web.context.store);
    let draft = || Draft {
        plan: plan_id.map(str::to_string),
        site: submission.site.to_string(),
        zones: submission.zones.to_string(),
    };
    let refused = |mut problems: Vec<String>| {
        if image_bytes.is_some() {
            problems.push("The chosen image was not saved either: choose it again.".into());
        }
        page(
            &web,
            &session,
            None,
            problems,
            draft(),
            StatusCode::BAD_REQUEST,
        )
    };
    let checked = match edit::check(&submission, &plans.all(), &web.zones) {
        Ok(checked) => checked,
        Err(problems) => return refused(problems),
    };
    let id = match &checked.replaces {
        Some(old) => old.id.clone(),
        None => match plans.new_id() {
            Ok(id) => id,
            Err(error) => return refused(vec![format!("The plan could not be saved: {error}")]),
        },
    };
    let new_image = checked.image.is_some();
    let Some(plan) = checked.into_plan(id, &session.user, chrono::Utc::now()) else {
        return refused(vec![
            "Choose an image file (PNG or JPEG) for the new plan.".into()
        ]);
    };
    if let Err(error) = plans.save(&plan, image_bytes.filter(|_| new_image)) {
        tracing::error!(%error, "console: a floor plan could not be saved");
        return refused(vec![format!("The plan could not be saved: {error}")]);
    }
    tracing::info!(
        by = session.user,
        site = plan.site,
        zones = plan.zones.len(),
        "console: floor plan saved"
    );
    let notice = format!(
        "The floor plan of {} is saved with {} outlined.",
        plan.site,
        crate::wording::count(plan.zones.len() as u64, "zone", "zones")
    );
    page(
        &web,
        &session,
        Some(notice),
        Vec::new(),
        Draft::default(),
        StatusCode::OK,
    )
}

/// The upload filter refused the body: too large, or not a multipart form. An admin's body is
/// read and dropped first (up to [`DRAIN_LIMIT`]), so the browser, still sending, gets the page
/// rather than a reset connection.
async fn refused_upload<S, B>(
    web: Arc<Web>,
    caller: Caller,
    length: Option<u64>,
    body: S,
) -> Response
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Send,
    B: warp::Buf,
{
    let session = match web.require(&caller, Role::Admin, Audience::Page) {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let mut body = std::pin::pin!(body);
    let mut drained: u64 = 0;
    while let Some(Ok(chunk)) = futures_util::StreamExt::next(&mut body).await {
        drained += chunk.remaining() as u64;
        if drained > DRAIN_LIMIT {
            break;
        }
    }
    let (status, problem) = if length.is_some_and(|l| l > BODY_LIMIT) {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "The upload is too large: a floor plan image may be at most {} MB.",
                image::MAX_BYTES / (1024 * 1024)
            ),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            "The form could not be read: send it from this page.".to_string(),
        )
    };
    page(
        &web,
        &session,
        None,
        vec![problem],
        Draft::default(),
        status,
    )
}

/// Removes a plan (form: `csrf`, `plan`).
pub fn remove(web: Arc<Web>, caller: Caller, form: Form) -> Response {
    let session = match web.require(&caller, Role::Admin, Audience::Page) {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    if !csrf_ok(&session, &form) {
        return respond::csrf_refused();
    }
    let plans = FloorPlans::of(&web.context.store);
    let id = field(&form, "plan");
    let site = plans.get(id).map(|p| p.site);
    let (notice, problems, status) = match (plans.remove(id), site) {
        (Ok(true), Some(site)) => {
            tracing::info!(by = session.user, site, "console: floor plan removed");
            (
                Some(format!("The floor plan of {site} is removed.")),
                Vec::new(),
                StatusCode::OK,
            )
        }
        (Ok(_), _) => (
            None,
            vec!["That floor plan is gone (removed meanwhile?).".to_string()],
            StatusCode::NOT_FOUND,
        ),
        (Err(error), _) => (
            None,
            vec![format!("The plan could not be removed: {error}")],
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    };
    page(&web, &session, notice, problems, Draft::default(), status)
}

/// A plan's image, with the type its bytes were recognised as.
pub fn image(web: &Web, caller: &Caller, id: &str) -> Response {
    if let Err(refused) = web.require(caller, Role::Guard, Audience::Page) {
        return refused;
    }
    match FloorPlans::of(&web.context.store).image(id) {
        Ok(Some((kind, bytes))) => {
            warp::reply::with_header(bytes, header::CONTENT_TYPE, kind.content_type())
                .into_response()
        }
        Ok(None) => respond::text(StatusCode::NOT_FOUND, "No such floor plan."),
        Err(error) => {
            tracing::error!(%error, "console: a floor plan's image cannot be read");
            respond::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The floor plan's image cannot be read; see the log.",
            )
        }
    }
}
