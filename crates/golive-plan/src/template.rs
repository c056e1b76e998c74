//! Message templates of the communication schedule (`comms:`): text with
//! `{{fact}}` placeholders for the run's facts at the time the message is
//! sent. The facts a template may name are [`Fact`]s, checked when the
//! plan is compiled; what each one reads is the engine's.

use std::fmt;

/// A fact of the run a message can quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    /// `{{plan}}`: the plan's name.
    Plan,
    /// `{{run}}`: the run's id.
    Run,
    /// `{{status}}`: the run's status (`running`, `rolled-back`, …).
    Status,
    /// `{{phase}}`: the title of the phase under way.
    Phase,
    /// `{{t0}}`: T-0, as a UTC time.
    T0,
    /// `{{t}}`: the message's own T-offset, e.g. `T+15m`.
    T,
    /// `{{signed}}`: who signed the sign-offs so far, with their roles.
    Signed,
    /// `{{step}}`: the rollout's current traffic step and weight.
    Step,
    /// `{{metrics.NAME}}`: the canary's value of a metric at the last
    /// evaluation of a rollout's analysis (`no data` before any).
    Metric(String),
}

impl Fact {
    /// Every fact name but the metrics, as written.
    pub const NAMES: [&'static str; 8] = [
        "plan", "run", "status", "phase", "t0", "t", "signed", "step",
    ];

    fn named(name: &str) -> Option<Fact> {
        Some(match name {
            "plan" => Fact::Plan,
            "run" => Fact::Run,
            "status" => Fact::Status,
            "phase" => Fact::Phase,
            "t0" => Fact::T0,
            "t" => Fact::T,
            "signed" => Fact::Signed,
            "step" => Fact::Step,
            _ => {
                return name
                    .strip_prefix("metrics.")
                    .map(|m| Fact::Metric(m.to_string()));
            }
        })
    }
}

/// A part of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Text as written.
    Text(String),
    /// A placeholder.
    Fact(Fact),
}

/// A compiled message template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

/// A placeholder that names no fact: its byte offset into the text and
/// what it said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// Byte offset of the `{{`.
    pub offset: usize,
    /// The message.
    pub message: String,
}

impl Template {
    /// Parses `text`; every placeholder must name a [`Fact`].
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut at = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let inner = &rest[open + 2..];
            let Some(close) = inner.find("}}") else {
                return Err(TemplateError {
                    offset: at + open,
                    message: "`{{` is not closed with `}}`".into(),
                });
            };
            let name = inner[..close].trim();
            match Fact::named(name) {
                Some(Fact::Metric(m)) if m.is_empty() => {
                    return Err(TemplateError {
                        offset: at + open,
                        message:
                            "`{{metrics.}}` needs a metric's name, e.g. `{{metrics.error_rate}}`"
                                .into(),
                    });
                }
                Some(fact) => parts.push(Part::Fact(fact)),
                None => {
                    return Err(TemplateError {
                        offset: at + open,
                        message: format!(
                            "unknown placeholder `{{{{{name}}}}}`: use {}, or `{{{{metrics.NAME}}}}`",
                            Fact::NAMES
                                .iter()
                                .map(|n| format!("`{{{{{n}}}}}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    });
                }
            }
            let consumed = open + 2 + close + 2;
            at += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            text: text.to_string(),
            parts,
        })
    }

    /// The facts it quotes, in order.
    pub fn facts(&self) -> impl Iterator<Item = &Fact> {
        self.parts.iter().filter_map(|p| match p {
            Part::Fact(f) => Some(f),
            Part::Text(_) => None,
        })
    }

    /// The text with each placeholder replaced by `fact`'s answer.
    pub fn render(&self, fact: &mut dyn FnMut(&Fact) -> String) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Fact(f) => fact(f),
            })
            .collect()
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_facts_and_render() {
        let t = Template::parse("{{plan}} at {{ t }}: {{status}}, errors {{metrics.error_rate}}.")
            .expect("parses");
        let facts: Vec<&Fact> = t.facts().collect();
        assert_eq!(
            facts,
            [
                &Fact::Plan,
                &Fact::T,
                &Fact::Status,
                &Fact::Metric("error_rate".into())
            ]
        );
        let text = t.render(&mut |f| match f {
            Fact::Plan => "checkout".into(),
            Fact::T => "T+15m".into(),
            Fact::Status => "running".into(),
            _ => "0.01".into(),
        });
        assert_eq!(text, "checkout at T+15m: running, errors 0.01.");
        assert_eq!(
            Template::parse("no facts")
                .expect("ok")
                .render(&mut |_| "x".into()),
            "no facts"
        );
    }

    #[test]
    fn mistakes_point_at_their_placeholder() {
        let e = Template::parse("ok {{stauts}} then").expect_err("unknown");
        assert_eq!(e.offset, 3);
        assert!(
            e.message.contains("unknown placeholder `{{stauts}}`"),
            "{}",
            e.message
        );
        assert!(e.message.contains("`{{status}}`"), "{}", e.message);
        let e = Template::parse("a {{plan}} b {{run").expect_err("open");
        assert_eq!(e.offset, 13);
        assert!(Template::parse("{{metrics.}}").is_err());
    }
}
