//! Self-test of the fake Microsoft cloud (tests/support/fake_cloud), with plain reqwest.

mod support;

use support::fake_cloud::{FakeCloud, FakeOptions};

#[tokio::test]
async fn starts() {
    let cloud = FakeCloud::start(FakeOptions::default()).await;
    assert!(cloud.graph_url().ends_with("/v1.0"));
}
