//! The appliance's physical side of the alarm, driven from the alarm's pure views: the strobe,
//! siren and trouble relays ([`relays`]; the `[outputs]` section that wires them is [`config`]), the
//! acknowledge button ([`button`]) — both generic over the embedded-hal 1.0 digital traits,
//! with [`crate::hw`] providing the pins — and the 128×64 SSD1306 OLED ([`display`]:
//! framebuffer, screens, I2C driver, PNG mirror). [`mqtt`] publishes the alarm to a broker and
//! Home Assistant and takes acknowledge and test commands from it; messages beyond the
//! appliance — e-mail, SMS, webhooks, PagerDuty — go through a durable outbox ([`notify`]).
//! The other boxes of the fleet hear of this box and its acknowledgements through [`peers`].

pub mod button;
pub mod config;
pub mod display;
pub mod mqtt;
pub mod notify;
pub mod peers;
pub mod relays;
