//! The display loop: draws the alarm's display model on every change and once a second (the
//! clock, elapsed time and scrolling move), sends the picture to the panel only when it
//! changed, and publishes it as PNG for the web page's display mirror. Runs without a panel
//! too (the mirror still works). A panel that stops answering is reported once per outage.

use std::time::Duration;

use embedded_hal::i2c::I2c;
use tokio::sync::watch;

use super::framebuffer::Framebuffer;
use super::screens::{render, ScreenContext};
use super::ssd1306::Ssd1306;
use crate::alarm_task::AlarmView;

/// Redraw period when nothing changes.
const TICK: Duration = Duration::from_secs(1);

/// Runs until the alarm's view closes; then blanks the panel.
pub async fn run<I, C>(
    mut view: watch::Receiver<AlarmView>,
    context: C,
    mut panel: Option<Ssd1306<I>>,
    mirror: watch::Sender<Vec<u8>>,
) where
    I: I2c,
    I::Error: std::fmt::Debug,
    C: Fn(u64) -> ScreenContext,
{
    let mut shown: Option<Framebuffer> = None;
    let mut panel_ok = true;
    let mut tick: u64 = 0;
    if let Some(p) = panel.as_mut() {
        if let Err(e) = p.init() {
            tracing::error!(error = ?e, "display: the panel did not answer at start");
            panel_ok = false;
        }
    }
    loop {
        let model = view.borrow_and_update().display.clone();
        let mut frame = Framebuffer::new();
        render(&model, &context(tick), &mut frame);
        if shown.as_ref() != Some(&frame) {
            if let Some(p) = panel.as_mut() {
                match p.flush(&frame) {
                    Ok(()) if !panel_ok => {
                        tracing::info!("display: the panel answers again");
                        panel_ok = true;
                    }
                    Ok(()) => {}
                    Err(e) if panel_ok => {
                        tracing::error!(error = ?e, "display: the panel stopped answering");
                        panel_ok = false;
                    }
                    Err(_) => {}
                }
            }
            mirror.send_replace(frame.to_png());
            shown = Some(frame);
        }
        tokio::select! {
            changed = view.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            _ = tokio::time::sleep(TICK) => tick = tick.wrapping_add(1),
        }
    }
    if let Some(p) = panel.as_mut() {
        let _ = p.flush(&Framebuffer::new());
    }
}
