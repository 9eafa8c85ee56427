//! The one start-failure policy, and the board's outputs opened under it.
//!
//! A part that cannot start (MQTT, the notifiers, the console, a GPIO line, the display) is
//! logged and raised as a trouble on the alarm, and the appliance runs without it: never a
//! failed start, never a silent one. Only what the appliance cannot alarm without (the store,
//! the keys) stops a start; that is [`super::AppError`].

use std::fmt::Display;

use crate::alarm::Event;
use crate::alarm_task::AlarmHandle;

/// `started`, or — when it failed — `None` after logging the error and raising it as a
/// trouble under `component` (the words are the error's).
pub async fn or_trouble<T, E: Display>(
    alarm: &AlarmHandle,
    component: &str,
    started: Result<T, E>,
) -> Option<T> {
    match started {
        Ok(part) => Some(part),
        Err(error) => {
            let detail = error.to_string();
            tracing::error!(component, error = %detail, "could not start");
            alarm
                .send(Event::TroubleRaised {
                    component: component.to_string(),
                    detail,
                })
                .await;
            None
        }
    }
}

/// The relays, button and display of `[outputs]` on the kernel's GPIO and I2C (Linux).
#[cfg(target_os = "linux")]
pub mod board {
    use tokio::task::JoinHandle;

    use crate::alarm_task::AlarmHandle;
    use crate::config::Config;

    /// The SSD1306 on the kernel's I2C bus.
    pub type Panel = crate::outputs::display::Ssd1306<linux_embedded_hal::I2cdev>;

    /// Opens the GPIO lines of `[outputs]` and starts the relay loop and, when configured,
    /// the button loop. A line that cannot be opened becomes a trouble on the alarm, never a
    /// failed start.
    pub async fn start_outputs(
        config: &Config,
        alarm: &AlarmHandle,
    ) -> (Option<JoinHandle<()>>, Option<JoinHandle<()>>) {
        let checked = match config.checked() {
            Ok(checked) => checked,
            Err(error) => {
                // Checked when the configuration was loaded; a built-in one that is wrong.
                tracing::error!(%error, "the outputs are not wired");
                return (None, None);
            }
        };
        let wiring = &checked.wiring;
        let (mut relays, errors) = crate::hw::linux::open_relays(wiring);
        if let Err(e) = relays.safe() {
            tracing::error!(error = ?e, "could not de-energise the outputs at start");
        }
        for error in errors {
            tracing::error!(%error, "output line not available");
            alarm.send(error.trouble()).await;
        }
        let relays = tokio::spawn(crate::outputs::relays::run(alarm.view(), relays));
        let mut button = None;
        if let Some(config) = &config.outputs.button {
            match crate::hw::linux::open_button(wiring, config) {
                Ok(Some(pin)) => {
                    button = Some(tokio::spawn(crate::outputs::button::run(
                        pin,
                        alarm.clone(),
                        std::time::Duration::from_millis(10),
                    )))
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(%error, "acknowledge button not available");
                    alarm.send(error.trouble()).await;
                }
            }
        }
        (Some(relays), button)
    }

    /// The OLED of `[outputs.display]`, when there is one; a bus that cannot be opened is a
    /// trouble (the console's mirror still shows the screen).
    pub async fn open_display(config: &Config, alarm: &AlarmHandle) -> Option<Panel> {
        let display = config.outputs.display.as_ref()?;
        match crate::hw::linux::open_display(display) {
            Ok(panel) => Some(panel),
            Err(error) => {
                tracing::error!(%error, "display not available");
                alarm.send(error.trouble()).await;
                None
            }
        }
    }
}
