//! `beacon login` as an operator runs it, against the fake Microsoft cloud: it prints the
//! code and the address, waits for the person, and prints the signed-in account.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::support::fake_cloud::{FakeCloud, FakeOptions};
use crate::support::process::beacon;

#[tokio::test(flavor = "multi_thread")]
async fn login_prints_the_code_waits_and_names_the_account() {
    let cloud = FakeCloud::start(FakeOptions {
        poll_interval_secs: 1,
        ..FakeOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("beacon.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[graph]\nlogin_url = \"{}\"\ngraph_url = \"{}\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\n",
            dir.path().join("data").display(),
            cloud.login_url(),
            cloud.graph_url(),
            cloud.options().tenant_domain,
            cloud.options().client_id
        ),
    )
    .expect("config");
    let mut child = beacon(&["login"], &config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("prompt in time")
        .expect("a line");
    let code = first.rsplit(' ').next().expect("code").to_string();
    assert!(first.contains("open http"), "{first}");
    assert!(
        cloud.pending_user_codes().contains(&code),
        "printed {code:?}"
    );
    assert!(cloud.approve(&code));
    let mut last = String::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
        last = line;
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success());
    assert!(
        last.contains("Signed in as E911 Desk (e911-desk@contoso.com)"),
        "{last}"
    );
}
