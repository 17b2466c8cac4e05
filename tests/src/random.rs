//! A small deterministic random number generator, for data that must be the same on every
//! run (the benches' fixtures, the load tools' requests) without a dependency.

/// A 64-bit linear congruential generator (Knuth's MMIX constants), output from the high
/// bits. Not for anything secret.
#[derive(Debug, Clone)]
pub struct Lcg(u64);

impl Lcg {
    /// The generator for `seed`; nearby seeds give unrelated sequences.
    pub fn new(seed: u64) -> Lcg {
        let mut lcg = Lcg(seed ^ 0x9e37_79b9_7f4a_7c15);
        lcg.next_u64();
        lcg.next_u64();
        lcg
    }

    /// The next 48 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 16
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 37) as f64
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}
