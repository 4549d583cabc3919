//! rand 0.4 API on top of rand 0.8 (see Cargo.toml).
pub use rand08::{random, rngs, seq, thread_rng, CryptoRng, RngCore, SeedableRng};
pub use rand08::distributions;
pub use rand08::rngs::ThreadRng;

use rand08::distributions::uniform::SampleUniform;
use rand08::distributions::{Distribution, Standard};

pub trait Rng: RngCore {
    fn gen<T>(&mut self) -> T
    where
        Standard: Distribution<T>,
    {
        rand08::Rng::gen(self)
    }
    /// 0.4 signature: half-open range [low, high).
    fn gen_range<T: SampleUniform + PartialOrd>(&mut self, low: T, high: T) -> T {
        rand08::Rng::gen_range(self, low..high)
    }
    fn gen_bool(&mut self, p: f64) -> bool {
        rand08::Rng::gen_bool(self, p)
    }
    fn gen_weighted_bool(&mut self, n: u32) -> bool {
        n <= 1 || rand08::Rng::gen_range(self, 0..n) == 0
    }
    fn shuffle<T>(&mut self, values: &mut [T]) {
        rand08::seq::SliceRandom::shuffle(values, self)
    }
    fn choose<'a, T>(&mut self, values: &'a [T]) -> Option<&'a T> {
        rand08::seq::SliceRandom::choose(values, self)
    }
}

impl<R: RngCore + ?Sized> Rng for R {}
