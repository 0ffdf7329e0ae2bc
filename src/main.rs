use tutoring::configuration::Settings;
use tutoring::startup::Application;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    tutoring::telemetry::init();
    tutoring::startup::install_tls_provider();
    let settings = Settings::from_env()?;
    if settings.auth.jwt_secret_is_ephemeral {
        tracing::warn!(
            "JWT_SECRET is not set: using a random secret; tokens will not survive a restart \
             nor work across server nodes"
        );
    }
    let application = Application::build(settings).await?;
    tracing::info!(address = %application.address(), "serving");
    application.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}
