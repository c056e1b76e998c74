//! Traffic actuators (being written).

pub mod flagstore;
