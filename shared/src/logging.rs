//! Tracing set-up for the CLI; the functions use the Lambda runtime's, which honours
//! `AWS_LAMBDA_LOG_FORMAT=JSON`.

use tracing_subscriber::EnvFilter;

/// Human-readable logs on stderr, or JSON when `BRONZE_LOG_FORMAT=json`.
pub fn init_cli() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("BRONZE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().init();
    } else {
        builder.init();
    }
}
