//! The settings table of the README, made from the declarations: every variable, its file key
//! (and the flat key older files use), its default and its meaning.

use super::Settings;

/// The default of the setting at `key`, as the table shows it.
fn default_of(defaults: &toml::Table, key: &str) -> String {
    let mut value: Option<&toml::Value> = None;
    let mut table = Some(defaults);
    for part in key.split('.') {
        value = table.and_then(|t| t.get(part));
        table = value.and_then(toml::Value::as_table);
    }
    match value {
        None => "unset".into(),
        Some(toml::Value::String(s)) => format!("`{s}`"),
        Some(v) => format!("`{v}`"),
    }
}

/// A doc comment as one table cell.
fn cell(doc: &str) -> String {
    doc.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The Markdown table of every setting.
pub fn markdown_table() -> String {
    let defaults = toml::Table::try_from(Settings::default())
        .expect("the default settings serialize to a TOML table");
    let mut out = String::from(
        "| variable | file key (older flat key) | default | meaning |\n|---|---|---|---|\n",
    );
    for d in Settings::declarations() {
        let key = if d.flat == d.key {
            format!("`{}`", d.key)
        } else {
            format!("`{}` (`{}`)", d.key, d.flat)
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            d.env,
            key,
            default_of(&defaults, &d.key),
            cell(d.doc)
        ));
    }
    out
}
