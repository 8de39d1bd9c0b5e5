//! Enums stored as TEXT and sent as lowercase strings (session state, agent,
//! transition reason, run outcome, message role): one definition of their
//! text form, parsing, serde and Diesel mapping.

/// Text that names no variant of a text enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnknownValue(pub String);

/// Defines a fieldless enum with a fixed text form per variant: `ALL`,
/// `as_str`, `Display`, `FromStr` (with an error naming the bad text and the
/// choices), serde as that text, and TEXT column mapping under `ssr`.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$variant_meta:meta])* $variant:ident = $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        #[cfg_attr(
            feature = "ssr",
            derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)
        )]
        #[cfg_attr(feature = "ssr", diesel(sql_type = diesel::sql_types::Text))]
        pub enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $text)] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The text stored in the database and used on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                }
            }
        }

        // By hand: serde's derived enum visitor is ~1 KiB of WASM per enum;
        // reading a string and looking it up shares one string decoder.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::ALL.into_iter().find(|v| v.as_str() == text).ok_or_else(|| {
                    serde::de::Error::unknown_variant(&text, &[$($text),+])
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::text_enum::UnknownValue;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::ALL.into_iter().find(|v| v.as_str() == text).ok_or_else(|| {
                    $crate::text_enum::UnknownValue(format!(
                        "unknown {} {:?}: expected one of {}",
                        $what,
                        text,
                        Self::ALL.map(Self::as_str).join(", ")
                    ))
                })
            }
        }

        #[cfg(feature = "ssr")]
        $crate::db::text_sql_type!($name);
    };
}
pub(crate) use text_enum;
