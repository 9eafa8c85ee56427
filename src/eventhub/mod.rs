//! Azure Event Hubs over the Kafka protocol: the `[eventhub]` section ([`config`]), the
//! connection string and the consumer.

pub mod assignment;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod probe;
pub mod repeats;
