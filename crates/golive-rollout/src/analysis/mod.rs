//! Go/no-go analysis (being written).
