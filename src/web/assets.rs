//! Static files embedded in the binary (no build step, nothing fetched at run time): the
//! console's stylesheet and scripts, and Leaflet 1.9.4 (BSD-2-Clause, `assets/vendor/leaflet`).
//! Served under `/static/` without a session, cached for an hour.

/// `(path under /static/, content type, bytes)`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console.js"),
    ),
    (
        "setup.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/setup.js"),
    ),
    (
        "map.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/map.js"),
    ),
    (
        "floor_plan_editor.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/floor_plan_editor.js"),
    ),
    (
        "leaflet/leaflet.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/leaflet/leaflet.js"),
    ),
    (
        "leaflet/leaflet.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/leaflet/leaflet.css"),
    ),
    (
        "leaflet/images/marker-icon.png",
        "image/png",
        include_bytes!("../../assets/vendor/leaflet/images/marker-icon.png"),
    ),
    (
        "leaflet/images/marker-icon-2x.png",
        "image/png",
        include_bytes!("../../assets/vendor/leaflet/images/marker-icon-2x.png"),
    ),
    (
        "leaflet/images/marker-shadow.png",
        "image/png",
        include_bytes!("../../assets/vendor/leaflet/images/marker-shadow.png"),
    ),
    (
        "leaflet/images/layers.png",
        "image/png",
        include_bytes!("../../assets/vendor/leaflet/images/layers.png"),
    ),
    (
        "leaflet/images/layers-2x.png",
        "image/png",
        include_bytes!("../../assets/vendor/leaflet/images/layers-2x.png"),
    ),
];

/// The embedded file at `path` (under `/static/`): content type and bytes.
pub fn get(path: &str) -> Option<(&'static str, &'static [u8])> {
    FILES
        .iter()
        .find(|(name, _, _)| *name == path)
        .map(|(_, kind, bytes)| (*kind, *bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_there_and_nothing_else() {
        assert!(get("leaflet/leaflet.js").is_some_and(|(_, b)| b.len() > 100_000));
        assert!(get("console.js").is_some());
        assert!(get("../Cargo.toml").is_none());
        assert!(get("").is_none());
    }
}
