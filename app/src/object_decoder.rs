//! Smaller serde decoders for the structs the browser reads.

/// Implements `Deserialize` for a struct read from a JSON object, for the
/// browser build. serde's derive also reads a struct from an array (a
/// second decoder for every field) and checks for duplicate keys; the
/// server only ever writes objects, so this one decoder is enough, at
/// about half the WASM. `required` fields must be present; `optional` ones
/// take their default when absent (an `Option`, or a `#[serde(default)]`
/// field); `skipped` ones are not read (no page shows them) and default.
macro_rules! object_decoder {
    (
        $name:ident {
            required: [$($req:ident),* $(,)?],
            optional: [$($opt:ident),* $(,)?],
            skipped: [$($skip:ident),* $(,)?] $(,)?
        }
    ) => {
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Fields;
                impl<'de> serde::de::Visitor<'de> for Fields {
                    type Value = $name;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " object"))
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        $(let mut $req = None;)*
                        $(let mut $opt = None;)*
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                $(stringify!($req) => $req = Some(map.next_value()?),)*
                                $(stringify!($opt) => $opt = Some(map.next_value()?),)*
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok($name {
                            $($req: $req.ok_or_else(|| {
                                <A::Error as serde::de::Error>::missing_field(stringify!($req))
                            })?,)*
                            $($opt: $opt.unwrap_or_default(),)*
                            $($skip: Default::default(),)*
                        })
                    }
                }
                deserializer.deserialize_map(Fields)
            }
        }
    };
}
pub(crate) use object_decoder;
