//! The Prometheus text exposition format (version 0.0.4) as a writer: metric families with
//! their `# HELP` and `# TYPE` lines, samples with labels, label values and help texts escaped
//! as the format asks. A family without samples is left out whole (no sentinel values).

use std::fmt::Write;

/// The `# TYPE` of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets at restart); named `…_total`.
    Counter,
    /// Goes up and down, or a timestamp, or a state (1 for the current one).
    Gauge,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// One sample: label pairs and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Sample {
    /// A sample without labels.
    pub fn plain(value: impl Into<f64>) -> Sample {
        Sample {
            labels: Vec::new(),
            value: value.into(),
        }
    }

    /// A sample with one label.
    pub fn labelled(label: &'static str, text: impl Into<String>, value: impl Into<f64>) -> Sample {
        Sample {
            labels: vec![(label, text.into())],
            value: value.into(),
        }
    }
}

/// The text being written.
#[derive(Debug, Default)]
pub struct Exposition {
    out: String,
}

impl Exposition {
    /// One family with its samples; nothing at all when `samples` is empty.
    pub fn family(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        samples: impl IntoIterator<Item = Sample>,
    ) {
        let mut samples = samples.into_iter().peekable();
        if samples.peek().is_none() {
            return;
        }
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.name());
        for sample in samples {
            self.out.push_str(name);
            if !sample.labels.is_empty() {
                self.out.push('{');
                for (i, (label, text)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                    }
                    let _ = write!(self.out, "{label}=\"{}\"", escape_label(text));
                }
                self.out.push('}');
            }
            let _ = writeln!(self.out, " {}", number(sample.value));
        }
    }

    /// A counter without labels.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        // Counts beyond 2^53 lose precision, as in every Prometheus client.
        #[allow(clippy::cast_precision_loss)]
        self.family(name, Kind::Counter, help, [Sample::plain(value as f64)]);
    }

    /// A gauge without labels; left out when `value` is `None` (not known).
    pub fn gauge(&mut self, name: &str, help: &str, value: Option<f64>) {
        self.family(name, Kind::Gauge, help, value.map(Sample::plain));
    }

    /// An enum the way Prometheus' StateSet does it in this format: one gauge series per
    /// state, labelled `label="<state>"`, 1 for the current state and 0 for the others.
    pub fn state_set(
        &mut self,
        name: &str,
        help: &str,
        label: &'static str,
        states: &[&str],
        current: &str,
    ) {
        self.family(
            name,
            Kind::Gauge,
            help,
            states
                .iter()
                .map(|state| Sample::labelled(label, *state, u8::from(*state == current))),
        );
    }

    /// The text, in the order written.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A value as the format writes floats (`+Inf`, `-Inf`, `NaN`; integers without a point).
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        value.to_string()
    }
}

/// `\` and line feeds escaped, as `# HELP` text needs.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// `\`, `"` and line feeds escaped, as a label value needs.
fn escape_label(text: &str) -> String {
    escape_help(text).replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_has_help_type_and_escaped_labels() {
        let mut out = Exposition::default();
        out.family(
            "beacon_example_total",
            Kind::Counter,
            "Lines\nand \\ slashes.",
            [Sample::labelled("path", "a \"b\"\\\nc", 3u32)],
        );
        assert_eq!(
            out.finish(),
            "# HELP beacon_example_total Lines\\nand \\\\ slashes.\n\
             # TYPE beacon_example_total counter\n\
             beacon_example_total{path=\"a \\\"b\\\"\\\\\\nc\"} 3\n"
        );
    }

    #[test]
    fn an_unknown_value_leaves_the_family_out() {
        let mut out = Exposition::default();
        out.gauge("beacon_unknown", "Not known.", None);
        out.gauge("beacon_half", "Known.", Some(0.5));
        out.gauge("beacon_infinite", "Known.", Some(f64::INFINITY));
        assert_eq!(
            out.finish(),
            "# HELP beacon_half Known.\n# TYPE beacon_half gauge\nbeacon_half 0.5\n\
             # HELP beacon_infinite Known.\n# TYPE beacon_infinite gauge\nbeacon_infinite +Inf\n"
        );
    }

    #[test]
    fn a_state_set_marks_the_current_state_only() {
        let mut out = Exposition::default();
        out.state_set("beacon_mode", "Mode.", "mode", &["a", "b"], "b");
        let text = out.finish();
        assert!(text.contains("beacon_mode{mode=\"a\"} 0\n"), "{text}");
        assert!(text.contains("beacon_mode{mode=\"b\"} 1\n"), "{text}");
    }
}
