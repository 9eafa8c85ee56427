//! Test broker for Beacon's CI: tansu with SASL PLAIN enabled. Not part of the product.
use tansu_broker::{TracingFormat, otel};
use tansu_cli::{Cli, Result};
use tansu_sans_io::ErrorCode;

#[tokio::main]
async fn main() -> Result<ErrorCode> {
    let _guard = otel::init(TracingFormat::Text)?;
    Cli::main().await
}
