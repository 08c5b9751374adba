use autoscale_core::forecast::{fit, Config};
fn read(p: &str) -> Vec<f64> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}
fn main() {
    let minutes = read("/tmp/rr/minutes");
    let samples = read("/tmp/rr/samples");
    let l = 80.0;
    for k in 0..36 {
        let now0 = 1_800_000_000.0 + 100.0 * k as f64;
        let mut pts = Vec::new();
        let start = now0 - 95.0 * 60.0 - minutes.len() as f64 * 60.0;
        for (k, v) in minutes.iter().enumerate() {
            pts.push((start + 60.0 * k as f64, v * l * 2.0));
        }
        for (k, v) in samples.iter().enumerate() {
            pts.push((now0 - 95.0 * 60.0 + 5.0 * k as f64, v * l * 2.0));
        }
        let now = now0 + 90.0;
        let mut t = now0;
        while t < now {
            pts.push((t, 2.0 * l));
            t += 5.0;
        }
        let cfg = Config::for_sample_interval(5.0);
        match fit(&pts, &[], now, &cfg) {
            Ok(m) => {
                let cross = m.first_crossing(4.0 * l, now, now + 3600.0, 30.0);
                println!(
                    "{k}: cycle {} peak10m/threshold {:.2} cross {:?}",
                    m.cycle.is_some(),
                    m.peak(now, now + 600.0, 30.0) / (4.0 * l),
                    cross.map(|c| ((c - now) / 60.0).round())
                );
            }
            Err(e) => println!("{k}: {e}"),
        }
    }
}
