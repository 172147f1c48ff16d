//! Counters whose truth lives in the database (the credits ledger is append-only, so its sums
//! only grow): read at scrape time and exposed as Prometheus counters, the same from every
//! process, surviving restarts.

use std::sync::Mutex;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, LabelPair, Metric, MetricFamily, MetricType};

pub struct SnapshotCounter {
    desc: Desc,
    label: String,
    values: Mutex<Vec<(String, f64)>>,
}

impl SnapshotCounter {
    pub fn new(name: &str, help: &str, label: &str) -> Result<SnapshotCounter, prometheus::Error> {
        Ok(SnapshotCounter {
            desc: Desc::new(
                name.into(),
                help.into(),
                vec![label.into()],
                Default::default(),
            )?,
            label: label.into(),
            values: Mutex::new(Vec::new()),
        })
    }

    /// Replaces the values (one per label value).
    pub fn set(&self, values: Vec<(String, f64)>) {
        *self.values.lock().unwrap_or_else(|p| p.into_inner()) = values;
    }
}

impl Collector for SnapshotCounter {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let values = self
            .values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut family = MetricFamily::default();
        family.set_name(self.desc.fq_name.clone());
        family.set_help(self.desc.help.clone());
        family.set_field_type(MetricType::COUNTER);
        for (label_value, v) in values {
            let mut label = LabelPair::default();
            label.set_name(self.label.clone());
            label.set_value(label_value);
            let mut counter = Counter::default();
            counter.set_value(v);
            let mut m = Metric::default();
            m.set_label(vec![label]);
            m.set_counter(counter);
            family.mut_metric().push(m);
        }
        vec![family]
    }
}
