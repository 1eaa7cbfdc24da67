//! The report: markdown tables per section, the targets and what was
//! reached, and the series the plot draws.

use std::fmt::Write as _;

use crate::host::Host;
use crate::stats::Distribution;

/// A markdown table.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// The usual latency table: label columns, then n / min / median / p99 / max.
    pub fn distributions(labels: &[&str], unit: &str) -> Table {
        let mut headers: Vec<String> = labels.iter().map(|h| (*h).to_owned()).collect();
        headers.push("n".to_owned());
        for q in ["min", "median", "p99", "max"] {
            headers.push(format!("{q} ({unit})"));
        }
        Table {
            headers,
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Appends `labels` followed by the cells of `dist`.
    pub fn dist_row(&mut self, labels: &[String], dist: Option<&Distribution>) {
        let mut cells = labels.to_vec();
        cells.extend(dist_cells(dist));
        self.rows.push(cells);
    }

    /// The table as markdown.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| {} |", self.headers.join(" | "));
        let _ = writeln!(
            s,
            "|{}",
            self.headers
                .iter()
                .map(|_| "---|")
                .collect::<Vec<_>>()
                .concat()
        );
        for r in &self.rows {
            let _ = writeln!(s, "| {} |", r.join(" | "));
        }
        s
    }
}

/// n, min, median, p99, max of `dist` as cells (dashes when missing).
pub fn dist_cells(dist: Option<&Distribution>) -> Vec<String> {
    match dist {
        Some(d) => vec![
            d.n.to_string(),
            num(d.min),
            num(d.median),
            num(d.p99),
            num(d.max),
        ],
        None => vec!["0".into(), "–".into(), "–".into(), "–".into(), "–".into()],
    }
}

/// A number with about three significant digits.
pub fn num(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        "–".to_owned()
    } else if a >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// An optional ratio as a cell.
pub fn ratio_cell(r: Option<f64>) -> String {
    r.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×"))
}

/// One performance target the report checks (a figure tenure is meant
/// to reach) and what this run reached.
#[derive(Clone, Debug)]
pub struct Target {
    /// What is measured.
    pub what: String,
    /// The target.
    pub target: String,
    /// The figure reached.
    pub reached: String,
    /// Whether it was met (`None`: not measured).
    pub met: Option<bool>,
}

/// A series of latencies for the plot.
#[derive(Clone, Debug)]
pub struct Series {
    /// Which panel it belongs to.
    pub panel: String,
    /// Legend label.
    pub label: String,
    /// The samples.
    pub dist: Distribution,
}

/// A section of the report.
#[derive(Clone, Debug, Default)]
pub struct Section {
    /// Title.
    pub title: String,
    /// Paragraphs and tables, in order (markdown).
    pub body: Vec<String>,
    /// How long the section took to run, in seconds.
    pub seconds: f64,
}

impl Section {
    /// An empty section titled `title`.
    pub fn new(title: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            ..Section::default()
        }
    }

    /// Adds a paragraph.
    pub fn text(&mut self, text: impl Into<String>) {
        self.body.push(text.into());
    }

    /// Adds a table.
    pub fn table(&mut self, table: &Table) {
        self.body.push(table.markdown());
    }

    /// The section as markdown.
    pub fn markdown(&self) -> String {
        let mut s = format!("## {}\n\n", self.title);
        for b in &self.body {
            s.push_str(b.trim_end());
            s.push_str("\n\n");
        }
        let _ = writeln!(s, "_Section time: {:.0} s._\n", self.seconds);
        s
    }
}

/// Everything a run produced.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The machine.
    pub host: Host,
    /// Quick or full, and the command line.
    pub mode: String,
    /// Sections in run order.
    pub sections: Vec<Section>,
    /// Targets and what was reached.
    pub targets: Vec<Target>,
    /// Latency series for the plot.
    pub series: Vec<Series>,
    /// Sections that failed, with the error.
    pub failures: Vec<(String, String)>,
    /// Total run time in seconds.
    pub seconds: f64,
    /// What the committed report reached, by figure (see
    /// [`committed_targets`]), shown beside this run's figures.
    pub committed: Vec<(String, String)>,
}

/// The "figure → reached" pairs of a report's Targets table, read from a
/// report this program wrote earlier (the committed one), so that a run
/// shows each target beside the committed figure and a regression stands
/// out. Rows it cannot read are skipped.
pub fn committed_targets(markdown: &str) -> Vec<(String, String)> {
    let mut in_targets = false;
    let mut out = Vec::new();
    for line in markdown.lines() {
        if line.starts_with("## ") {
            in_targets = line.trim() == "## Targets";
            continue;
        }
        if !in_targets || !line.starts_with('|') || line.starts_with("|---") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| figure | target | reached | … |`: the header names "figure".
        if let (Some(&what), Some(&reached)) = (cells.get(1), cells.get(3)) {
            if what != "figure" {
                out.push((what.to_owned(), reached.to_owned()));
            }
        }
    }
    out
}

impl Report {
    /// Records a target.
    pub fn target(&mut self, what: &str, target: &str, reached: String, met: Option<bool>) {
        self.targets.push(Target {
            what: what.to_owned(),
            target: target.to_owned(),
            reached,
            met,
        });
    }

    /// Records a latency series for the plot.
    pub fn series(&mut self, panel: &str, label: &str, dist: Option<&Distribution>) {
        if let Some(d) = dist {
            self.series.push(Series {
                panel: panel.to_owned(),
                label: label.to_owned(),
                dist: d.clone(),
            });
        }
    }

    /// The whole report as markdown.
    pub fn markdown(&self, plot_file: Option<&str>) -> String {
        let mut s = String::from("# tenure benchmark report\n\n");
        let _ = writeln!(
            s,
            "{} Every figure is a distribution over the runs (n) of this \
             report; every ratio compares figures measured in this same run. \
             The p99 is the nearest-rank percentile: below 100 runs it is the \
             largest sample. Targets are figures to reach, not pass/fail bounds.\n",
            self.mode
        );
        s.push_str(&self.host.markdown());
        let _ = writeln!(s, "\nTotal run time: {:.0} s.\n", self.seconds);
        if let Some(p) = plot_file {
            let _ = writeln!(s, "![latency distributions]({p})\n");
        }
        if !self.targets.is_empty() {
            s.push_str("## Targets\n\n");
            let mut t = Table::new(&["figure", "target", "reached", "committed report", "met"]);
            for g in &self.targets {
                let before = self
                    .committed
                    .iter()
                    .find(|(what, _)| *what == g.what)
                    .map_or_else(|| "–".to_owned(), |(_, r)| r.clone());
                t.row(vec![
                    g.what.clone(),
                    g.target.clone(),
                    g.reached.clone(),
                    before,
                    match g.met {
                        Some(true) => "yes".into(),
                        Some(false) => "**no**".into(),
                        None => "–".into(),
                    },
                ]);
            }
            s.push_str(&t.markdown());
            s.push('\n');
        }
        for sec in &self.sections {
            s.push_str(&sec.markdown());
        }
        if !self.failures.is_empty() {
            s.push_str("## Sections that failed\n\n");
            for (name, err) in &self.failures {
                let _ = writeln!(s, "- **{name}**: {}", err.replace('\n', " "));
            }
        }
        s
    }
}

#[cfg(test)]
mod committed_tests {
    use super::*;

    #[test]
    fn reads_the_targets_table_of_an_earlier_report() {
        let md = "# r\n\n## Targets\n\n| figure | target | reached | met |\n|---|---|---|---|\n\
                  | handover median, a / b | ≤ 0.5× | 0.71× | **no** |\n\
                  | idle | 0 / s | 0 / s other | yes |\n\n## 5. Other\n\n| x | y | z | w |\n";
        assert_eq!(
            committed_targets(md),
            vec![
                ("handover median, a / b".to_owned(), "0.71×".to_owned()),
                ("idle".to_owned(), "0 / s other".to_owned()),
            ]
        );
    }
}
