//! How a setting is declared: once, in a `section!` block, with its type, default, environment
//! variable, the flat file key older files use, and its doc comment. The macro writes the
//! struct (serde, defaults) and the [`Declaration`]s the loader, the error messages and the
//! README's settings table are made from, so none of them can forget a setting.

/// One setting as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// Where it sits in the file, e.g. `simulator.port`.
    pub key: String,
    /// The environment variable that sets it, e.g. `TRX_SIM_PORT`.
    pub env: &'static str,
    /// The flat file key of the settings files before nesting (`sim_port`), still accepted.
    pub flat: &'static str,
    /// Its doc comment.
    pub doc: &'static str,
}

/// A group of settings (a struct made by `section!`).
pub trait Section {
    /// Appends the declarations of this section, whose key is `prefix` ("" at the top).
    fn declare(prefix: &str, out: &mut Vec<Declaration>);
}

/// `prefix.name`, or `name` at the top.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Declares a section: its settings (`pub name: Type = default, env "VAR", flat "key";`), then
/// its subsections (`section pub name: Type;`).
macro_rules! section {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                pub $field:ident : $ty:ty = $default:expr, env $env:literal, flat $flat:literal;
            )*
            $(
                section
                $(#[doc = $subdoc:literal])*
                pub $sub:ident : $subty:ty;
            )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
            $(
                $(#[doc = $subdoc])*
                pub $sub: $subty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $( $field: $default, )*
                    $( $sub: <$subty>::default(), )*
                }
            }
        }

        impl $crate::settings::declare::Section for $name {
            fn declare(prefix: &str, out: &mut Vec<$crate::settings::declare::Declaration>) {
                $(
                    out.push($crate::settings::declare::Declaration {
                        key: $crate::settings::declare::join(prefix, stringify!($field)),
                        env: $env,
                        flat: $flat,
                        doc: concat!($($doc, "\n",)*),
                    });
                )*
                $(
                    <$subty as $crate::settings::declare::Section>::declare(
                        &$crate::settings::declare::join(prefix, stringify!($sub)),
                        out,
                    );
                )*
            }
        }
    };
}

pub(crate) use section;
