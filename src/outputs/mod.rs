//! The appliance's physical side of the alarm: the strobe, siren and trouble relays
//! ([`relays`], which also holds the `[outputs]` configuration) and the acknowledge button
//! ([`button`]). Both are generic over the embedded-hal 1.0 digital traits; [`crate::hw`]
//! provides the pins.

pub mod button;
pub mod relays;
