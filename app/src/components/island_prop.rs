//! A wrapper for an island's data props.

use serde::{Deserialize, Serialize, Serializer};

/// An island prop the server renders into the page and the browser reads
/// back. Leptos' `#[island]` also serializes its props in the browser,
/// where the text is thrown away; this wrapper serializes nothing there,
/// which keeps every wrapped type's `Serialize` code out of the bundle.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct IslandProp<T>(pub T);

impl<T: Serialize> Serialize for IslandProp<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[cfg(feature = "ssr")]
        return self.0.serialize(serializer);
        #[cfg(not(feature = "ssr"))]
        serializer.serialize_unit()
    }
}
