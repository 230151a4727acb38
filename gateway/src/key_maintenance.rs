//! Key maintenance beside the keys: the one task that keeps the OHTTP key
//! ring and the issuer's token keys current while the gateway serves.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::keys::RotationPolicy;
use crate::service::Gateway;

/// Keeps the key rings current: re-reads the key file when it changes and
/// rotates by age (`rotate_after`) when configured; refreshes the token
/// keys and drops the spent tokens of a key that stopped verifying. Runs
/// until dropped; [`crate::http::run`] spawns it.
pub async fn run(gateway: Arc<Gateway>, rotate_after: Option<Duration>, rotation: RotationPolicy) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = gateway
            .keys()
            .refresh(SystemTime::now(), rotate_after, rotation)
        {
            // Keep serving the keys we have; the operator sees why.
            tracing::error!(error = %e, "could not refresh keys");
        }
        if let Some(tokens) = gateway.tokens() {
            match tokens.refresh(SystemTime::now()) {
                Ok(false) => {}
                Ok(true) => {
                    // A key stopped verifying: its spent tokens can go.
                    let tokens = tokens.clone();
                    let forgotten = tokio::task::spawn_blocking(move || {
                        tokens.forget_expired(SystemTime::now())
                    })
                    .await;
                    if let Ok(Err(e)) = forgotten {
                        tracing::error!(error = %e, "could not drop expired spent tokens");
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not refresh token keys"),
            }
        }
    }
}
