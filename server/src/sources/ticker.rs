//! A simulated stock ticker: a seeded random walk, so a run can be repeated exactly.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use switchboard_shared::{Quote, TickerQuotes};

/// The symbols and their opening prices.
const OPENING: [(&str, f64); 5] = [
    ("ACME", 182.40),
    ("GLOBEX", 96.15),
    ("INITECH", 41.08),
    ("UMBRELLA", 230.75),
    ("WAYNE", 512.30),
];

/// The largest move of one symbol in one tick, as a fraction of its price.
const MAX_STEP: f64 = 0.004;

#[derive(Debug)]
pub struct Ticker {
    rng: StdRng,
    prices: Vec<f64>,
}

impl Ticker {
    pub fn new(seed: u64) -> Ticker {
        Ticker {
            rng: StdRng::seed_from_u64(seed),
            prices: OPENING.iter().map(|&(_, price)| price).collect(),
        }
    }

    /// Moves one to three symbols and reports them, as a real feed reports only what changed.
    pub fn step(&mut self) -> TickerQuotes {
        let moves = self.rng.random_range(1..=3);
        let mut quotes = Vec::with_capacity(moves);
        for _ in 0..moves {
            let index = self.rng.random_range(0..OPENING.len());
            let step = self.rng.random_range(-MAX_STEP..=MAX_STEP);
            let price = &mut self.prices[index];
            // Never let a price reach zero: a walk in percentages stays positive.
            *price = (*price * (1.0 + step)).max(0.01);
            let (symbol, opening) = OPENING[index];
            if let Some(existing) = quotes
                .iter_mut()
                .find(|quote: &&mut Quote| quote.symbol == symbol)
            {
                existing.price = round_cents(*price);
                existing.change_pct = change_pct(*price, opening);
            } else {
                quotes.push(Quote {
                    symbol: symbol.to_owned(),
                    price: round_cents(*price),
                    change_pct: change_pct(*price, opening),
                });
            }
        }
        TickerQuotes { quotes }
    }
}

fn round_cents(price: f64) -> f64 {
    (price * 100.0).round() / 100.0
}

fn change_pct(price: f64, opening: f64) -> f64 {
    ((price / opening - 1.0) * 10_000.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_walks_the_same_way() {
        let (mut a, mut b) = (Ticker::new(42), Ticker::new(42));
        for _ in 0..100 {
            assert_eq!(a.step(), b.step());
        }
        assert_ne!(Ticker::new(1).step(), Ticker::new(2).step());
    }

    #[test]
    fn quotes_stay_plausible() {
        let mut ticker = Ticker::new(3);
        for _ in 0..10_000 {
            let tick = ticker.step();
            assert!((1..=3).contains(&tick.quotes.len()));
            for quote in tick.quotes {
                assert!(quote.price > 0.0);
                assert_eq!(quote.price, round_cents(quote.price));
                assert!(OPENING.iter().any(|&(symbol, _)| symbol == quote.symbol));
            }
        }
    }
}
