//! Which long-running parts of the daemon are up, for `/readyz`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Components register here and report whether they are running. Cloning shares the registry.
#[derive(Clone, Default)]
pub struct Health {
    components: Arc<Mutex<BTreeMap<&'static str, Result<(), String>>>>,
}

impl Health {
    /// Mark a component as running.
    pub fn up(&self, name: &'static str) {
        self.set(name, Ok(()));
    }

    /// Mark a component as not running, with the reason.
    pub fn down(&self, name: &'static str, reason: impl Into<String>) {
        self.set(name, Err(reason.into()));
    }

    fn set(&self, name: &'static str, state: Result<(), String>) {
        if let Ok(mut components) = self.components.lock() {
            components.insert(name, state);
        }
    }

    /// Every registered component with its state.
    pub fn snapshot(&self) -> Vec<(&'static str, Result<(), String>)> {
        self.components
            .lock()
            .map(|c| c.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default()
    }
}
