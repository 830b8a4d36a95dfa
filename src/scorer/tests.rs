#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use super::*;

fn scorer() -> Scorer {
    Scorer::new(&InjectionConfig::default()).unwrap()
}
