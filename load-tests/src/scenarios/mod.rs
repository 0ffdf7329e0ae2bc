//! One module per scenario.

pub mod logins;
