//! Azure Event Hubs over the Kafka protocol: the connection string and the consumer.

pub mod connection;
pub mod consumer;
pub mod probe;
pub mod repeats;
