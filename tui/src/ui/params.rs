//! The parameter editor of the Strategies view (`p`): the selected strategy's parameters
//! (name, type, value, bounds), the selected one's description and history, and an edit
//! of one parameter (a new value and a reason) sent as `strategies.parameters.update`.
//!
//! The daemon is the judge: the editor sends what was typed (read as JSON, or as text for
//! a `string` parameter) and shows the daemon's answer, its validation error or what the
//! change did (a bot reloaded, a native deployment picking it up, only recorded). The
//! parameters listed are those of the strategy's loaded detail, which a `registry.changed`
//! event reloads; the history is loaded on opening and after every change.

use super::app::{App, Command, Cursor, Failure, Tone};
use super::keys::{self, Action, Key};
use mem_protocol::Access;
use mem_protocol::registry::{
    ChangedBy, FREQTRADE_CONFIG_PARAMETERS, ParameterHistory, ParameterUpdate,
    UpdateParameterParams,
};
use mem_protocol::strategy::{StrategyDocument, StrategyId, StrategySummary};
use serde_json::Value;

/// The editor's state.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamEditor {
    pub strategy: StrategyId,
    pub display_name: String,
    /// The selected parameter, in name order.
    pub cursor: Cursor,
    /// Every change of the strategy's parameters, oldest first; None while loading.
    pub history: Option<Result<ParameterHistory, String>>,
    /// Enter: the selected parameter is being edited.
    pub edit: Option<ParamEdit>,
    /// A change was sent; its answer has not come.
    pub pending: bool,
    /// The last outcome or refusal, shown under the parameter.
    pub message: Option<(Tone, String)>,
}

/// The two input lines of an edit.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParamEdit {
    pub name: String,
    pub value: String,
    pub reason: String,
    /// The reason line has the keys (else the value line).
    pub on_reason: bool,
    /// Why the last submit was refused (by the editor or the daemon).
    pub error: Option<String>,
}

/// One parameter as the editor lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamRow {
    pub name: String,
    /// The declared type, or the JSON kind of a plain value.
    pub kind: String,
    pub value: Value,
    pub min: Option<Value>,
    pub max: Option<Value>,
    pub description: Option<String>,
}

/// The parameters of a metadata document, in name order. A parameter is a declaration
/// `{value, type, min?, max?, description?}` or a plain value.
pub fn rows(doc: &StrategyDocument) -> Vec<ParamRow> {
    doc.strategy
        .parameters
        .iter()
        .map(|(name, raw)| {
            let decl = raw
                .as_object()
                .filter(|o| o.contains_key("value") && o.contains_key("type"));
            match decl {
                Some(d) => ParamRow {
                    name: name.clone(),
                    kind: d["type"].as_str().unwrap_or("?").to_string(),
                    value: d["value"].clone(),
                    min: d.get("min").filter(|v| !v.is_null()).cloned(),
                    max: d.get("max").filter(|v| !v.is_null()).cloned(),
                    description: d
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                },
                None => ParamRow {
                    name: name.clone(),
                    kind: json_kind(raw).to_string(),
                    value: raw.clone(),
                    min: None,
                    max: None,
                    description: None,
                },
            }
        })
        .collect()
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What was typed, as the value to send: JSON (`21`, `-0.05`, `true`, `{"0": 0.1}`), or
/// the text itself for a `string` parameter (quotes optional) and for anything that is not
/// JSON (the daemon then says which type it wants).
pub fn parse_value(kind: &str, text: &str) -> Value {
    let t = text.trim();
    let json = serde_json::from_str::<Value>(t).ok();
    if kind == "string" {
        return json
            .filter(Value::is_string)
            .unwrap_or_else(|| Value::String(t.to_string()));
    }
    json.unwrap_or_else(|| Value::String(t.to_string()))
}

/// What changing a parameter of this strategy does, as docs/operator-guide.md's mapping says: one
/// line for the editor (the daemon's answer says what actually happened).
pub fn effect_note(doc: &StrategyDocument, name: &str) -> String {
    use mem_protocol::deploy_spec::{Runner, runner_of};
    match runner_of(&doc.strategy) {
        Runner::Native { .. } => "a running native deployment uses it from its next candle".into(),
        Runner::Freqtrade(_) if FREQTRADE_CONFIG_PARAMETERS.contains(&name) => format!(
            "Freqtrade config key `{name}`: a running bot gets it in its config and reloads"
        ),
        Runner::Freqtrade(_) => {
            "not a Freqtrade config key: recorded only (the bot's code keeps its value)".into()
        }
        Runner::None => "recorded in the registry".into(),
    }
}

/// A JSON value as the editor shows it: strings without quotes, the rest as JSON.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `5 .. 50`, `.. 50`, `5 ..`, or `-`.
pub fn range(row: &ParamRow) -> String {
    match (&row.min, &row.max) {
        (None, None) => "-".into(),
        (min, max) => format!(
            "{} .. {}",
            min.as_ref().map(show).unwrap_or_default(),
            max.as_ref().map(show).unwrap_or_default()
        )
        .trim()
        .to_string(),
    }
}

impl ParamEditor {
    /// The editor's strategy's document, when its detail is loaded.
    pub fn document<'a>(&self, app: &'a App) -> Option<&'a StrategyDocument> {
        match &app.strategies.detail {
            Some((id, Ok(data))) if *id == self.strategy => Some(&data.detail.metadata),
            _ => None,
        }
    }

    /// The rows and the selected one (clamped to the list).
    pub fn selected_row(&self, app: &App) -> Option<ParamRow> {
        let rows = rows(self.document(app)?);
        let i = self.cursor.selected.min(rows.len().saturating_sub(1));
        rows.into_iter().nth(i)
    }
}

impl App {
    /// `p` in the Strategies view: opens the editor of `s` and loads what it shows.
    pub(crate) fn open_param_editor(&mut self, s: &StrategySummary) -> Vec<Command> {
        self.strategies.editor = Some(ParamEditor {
            strategy: s.id,
            display_name: s.display_name.clone(),
            cursor: Cursor::default(),
            history: None,
            edit: None,
            pending: false,
            message: None,
        });
        if !self.is_connected() {
            return vec![];
        }
        let mut commands = vec![Command::LoadParameterHistory(s.id)];
        if !matches!(&self.strategies.detail, Some((id, Ok(_))) if *id == s.id) {
            commands.push(Command::LoadDetail(s.id));
        }
        commands
    }

    /// Whether a key's action goes past the editor to the usual handling: always when it
    /// is closed; when open, only the help and the view keys, and not while a parameter is
    /// edited (they are text then).
    pub(crate) fn param_editor_lets_through(&self, action: Option<Action>) -> bool {
        match &self.strategies.editor {
            None => true,
            Some(e) if e.edit.is_some() => false,
            Some(_) => {
                matches!(
                    action,
                    Some(Action::Help | Action::Messages | Action::NextView | Action::PrevView)
                ) || action.and_then(Action::view).is_some()
            }
        }
    }

    /// Keys while the editor is open: moving and Enter, or typing into an edit.
    pub(crate) fn on_param_editor_key(&mut self, key: Key, action: Option<Action>) -> Vec<Command> {
        let Some(mut editor) = self.strategies.editor.take() else {
            return vec![];
        };
        let commands = match editor.edit.take() {
            Some(edit) => self.on_edit_key(&mut editor, edit, key, action),
            None => {
                if action == Some(Action::Back) {
                    return vec![]; // closed: the editor stays taken
                }
                self.on_browse_key(&mut editor, action)
            }
        };
        self.strategies.editor = Some(editor);
        commands
    }

    fn on_browse_key(&mut self, editor: &mut ParamEditor, action: Option<Action>) -> Vec<Command> {
        let len = editor
            .document(self)
            .map_or(0, |d| d.strategy.parameters.len());
        if editor.cursor.on_action(action, len, self.page.get()) {
            editor.message = None;
            return vec![];
        }
        if action != Some(Action::Open) {
            return vec![];
        }
        let Some(row) = editor.selected_row(self) else {
            return vec![];
        };
        if self.access != Access::Control {
            editor.message = Some((
                Tone::Error,
                "read-only session: this connection cannot change parameters (memctl --read-only, or memd grants this user viewing only)".into(),
            ));
            return vec![];
        }
        editor.message = None;
        editor.edit = Some(ParamEdit {
            name: row.name,
            ..ParamEdit::default()
        });
        vec![]
    }

    fn on_edit_key(
        &mut self,
        editor: &mut ParamEditor,
        mut edit: ParamEdit,
        key: Key,
        action: Option<Action>,
    ) -> Vec<Command> {
        if action == Some(Action::Cancel) {
            return vec![]; // the edit is dropped; the list has the keys again
        }
        let mut commands = vec![];
        if action == Some(Action::SwitchField) {
            edit.on_reason = !edit.on_reason;
        } else if keys::is_backspace(&key) {
            if edit.on_reason {
                edit.reason.pop();
            } else {
                edit.value.pop();
            }
        } else if let Some(c) = keys::typed_char(&key) {
            if edit.on_reason {
                edit.reason.push(c);
            } else {
                edit.value.push(c);
            }
        } else if action == Some(Action::Confirm) {
            if editor.pending {
                edit.error = Some("the last change is still on its way".into());
            } else if edit.value.trim().is_empty() {
                edit.on_reason = false;
                edit.error = Some("type the new value".into());
            } else if !edit.on_reason {
                edit.on_reason = true;
                edit.error = None;
            } else if edit.reason.trim().is_empty() {
                edit.error = Some("say why: the reason goes into the history".into());
            } else if !self.is_connected() {
                edit.error = Some("not connected to memd".into());
            } else if self.access != Access::Control {
                edit.error = Some("read-only session: parameters cannot be changed".into());
            } else {
                let kind = editor
                    .selected_row(self)
                    .filter(|r| r.name == edit.name)
                    .map(|r| r.kind)
                    .unwrap_or_default();
                editor.pending = true;
                edit.error = None;
                commands.push(Command::UpdateParameter(UpdateParameterParams {
                    id: editor.strategy,
                    name: edit.name.clone(),
                    value: parse_value(&kind, &edit.value),
                    reason: edit.reason.trim().to_string(),
                    changed_by: ChangedBy::Manual,
                    is_ab_test: false,
                    ab_test_group: None,
                }));
            }
        }
        editor.edit = Some(edit);
        commands
    }

    pub(crate) fn on_parameter_history(
        &mut self,
        id: StrategyId,
        result: Result<ParameterHistory, String>,
    ) {
        if let Some(editor) = self.strategies.editor.as_mut().filter(|e| e.strategy == id) {
            editor.history = Some(result);
        }
    }

    pub(crate) fn on_parameter_updated(
        &mut self,
        id: StrategyId,
        result: Result<ParameterUpdate, Failure>,
    ) -> Vec<Command> {
        let text = |u: &ParameterUpdate| {
            let c = &u.change;
            let mut text = format!(
                "{}: {} -> {}",
                c.parameter_name,
                show(&c.old_value),
                show(&c.new_value)
            );
            for effect in &u.applied {
                text.push_str(" · ");
                text.push_str(effect);
            }
            text
        };
        let Some(editor) = self.strategies.editor.as_mut().filter(|e| e.strategy == id) else {
            // The editor was closed meanwhile: the status line says how it went.
            match &result {
                Ok(u) => self.say(Tone::Success, text(u)),
                Err(f) => self.say(Tone::Error, format!("parameter change: {}", f.message)),
            }
            return vec![];
        };
        editor.pending = false;
        match result {
            Ok(update) => {
                editor.edit = None;
                editor.message = Some((Tone::Success, text(&update)));
                vec![Command::LoadParameterHistory(id), Command::LoadDetail(id)]
            }
            Err(f) => {
                // `invalid params for `strategies.parameters.update`: ` says nothing here.
                let said = match f.message.split_once("`: ") {
                    Some((head, rest)) if head.starts_with("invalid params for `") => rest,
                    _ => f.message.as_str(),
                };
                let message = format!("memd: {said}");
                match editor.edit.as_mut() {
                    Some(edit) => edit.error = Some(message),
                    None => editor.message = Some((Tone::Error, message)),
                }
                vec![]
            }
        }
    }

    /// The connection went away: a change on its way has no answer to wait for.
    pub(crate) fn param_editor_disconnected(&mut self) {
        if let Some(editor) = self.strategies.editor.as_mut().filter(|e| e.pending) {
            editor.pending = false;
            let message = "not connected to memd: the change may not have been made".to_string();
            match editor.edit.as_mut() {
                Some(edit) => edit.error = Some(message),
                None => editor.message = Some((Tone::Error, message)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typed_values_are_read_by_the_declared_type() {
        assert_eq!(parse_value("integer", " 21 "), json!(21));
        assert_eq!(parse_value("float", "-0.05"), json!(-0.05));
        assert_eq!(parse_value("boolean", "true"), json!(true));
        assert_eq!(
            parse_value("object", r#"{"0": 0.1, "30": 0.02}"#),
            json!({"0": 0.1, "30": 0.02})
        );
        assert_eq!(parse_value("string", "monthly"), json!("monthly"));
        assert_eq!(parse_value("string", "\"weekly\""), json!("weekly"));
        assert_eq!(
            parse_value("string", "12"),
            json!("12"),
            "a string stays text"
        );
        assert_eq!(
            parse_value("integer", "twenty"),
            json!("twenty"),
            "not JSON: sent as text, the daemon names the type it wants"
        );
    }

    #[test]
    fn ranges_show_the_bounds_given() {
        let row = |min: Option<Value>, max: Option<Value>| ParamRow {
            name: "x".into(),
            kind: "float".into(),
            value: json!(1),
            min,
            max,
            description: None,
        };
        assert_eq!(range(&row(Some(json!(5)), Some(json!(50)))), "5 .. 50");
        assert_eq!(range(&row(None, Some(json!(-0.005)))), ".. -0.005");
        assert_eq!(range(&row(Some(json!(0)), None)), "0 ..");
        assert_eq!(range(&row(None, None)), "-");
    }
}
