//! Shape-keeping downsampling of a metric series for a chart `width` pixels wide: per pixel
//! column, the first, lowest, highest and last point (M4). A line drawn through them covers
//! exactly the pixels the full series would, so peaks and dips survive while a 100,000-point
//! series sends at most `4 * width` points.

/// One point of a series: x (step or time), the value, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub step: u64,
    pub time_ms: i64,
    pub value: f64,
}

/// Which quantity is on the x axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    Step,
    Time,
}

impl XAxis {
    pub fn of(self, point: &Point) -> f64 {
        match self {
            XAxis::Step => point.step as f64,
            XAxis::Time => point.time_ms as f64,
        }
    }
}

/// The points to draw for `points` (sorted by x) in `width` columns. Series short enough to
/// draw whole are returned as they are.
pub fn m4(points: Vec<Point>, x: XAxis, width: usize) -> Vec<Point> {
    let width = width.max(1);
    if points.len() <= 4 * width {
        return points;
    }
    let (lo, hi) = (x.of(&points[0]), x.of(&points[points.len() - 1]));
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let column = |p: &Point| {
        (((x.of(p) - lo) / span) * width as f64)
            .min(width as f64 - 1.0)
            .max(0.0) as usize
    };
    let mut kept = Vec::with_capacity(4 * width);
    let mut start = 0;
    while start < points.len() {
        let current = column(&points[start]);
        let mut end = start + 1;
        while end < points.len() && column(&points[end]) == current {
            end += 1;
        }
        let bucket = &points[start..end];
        let (mut low, mut high) = (0, 0);
        for (i, p) in bucket.iter().enumerate() {
            if p.value < bucket[low].value {
                low = i;
            }
            if p.value > bucket[high].value {
                high = i;
            }
        }
        let mut picks = [0, low, high, bucket.len() - 1];
        picks.sort_unstable();
        let mut previous = None;
        for i in picks {
            if previous != Some(i) {
                kept.push(bucket[i]);
                previous = Some(i);
            }
        }
        start = end;
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: impl IntoIterator<Item = f64>) -> Vec<Point> {
        values
            .into_iter()
            .enumerate()
            .map(|(i, value)| Point {
                step: i as u64,
                time_ms: 1000 + i as i64,
                value,
            })
            .collect()
    }

    #[test]
    fn short_series_are_kept_whole() {
        let points = series([1.0, 2.0, 3.0]);
        assert_eq!(m4(points.clone(), XAxis::Step, 10), points);
    }

    #[test]
    fn a_long_series_keeps_its_extremes_ends_and_order_within_four_points_per_column() {
        // 100,000 points of a slow wave with one spike up and one dip down.
        let mut values: Vec<f64> = (0..100_000).map(|i| (i as f64 / 5000.0).sin()).collect();
        values[31_337] = 50.0;
        values[77_777] = -50.0;
        let kept = m4(series(values), XAxis::Step, 500);
        assert!(kept.len() <= 2000, "{} points", kept.len());
        assert!(
            kept.len() > 1000,
            "every column keeps its first and last: {}",
            kept.len()
        );
        assert_eq!(kept.first().unwrap().step, 0);
        assert_eq!(kept.last().unwrap().step, 99_999);
        assert!(kept.iter().any(|p| p.step == 31_337 && p.value == 50.0));
        assert!(kept.iter().any(|p| p.step == 77_777 && p.value == -50.0));
        assert!(
            kept.windows(2).all(|w| w[0].step < w[1].step),
            "in x order, no duplicates"
        );
    }

    #[test]
    fn time_on_x_buckets_by_time() {
        let points = series((0..1000).map(|i| i as f64));
        let kept = m4(points, XAxis::Time, 10);
        assert!(kept.len() <= 40);
        assert_eq!(kept.last().unwrap().value, 999.0);
    }
}
