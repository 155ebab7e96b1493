//! A persona's mood and its bonds with other personas, as pure deterministic math.
//!
//! Nothing here reads a clock or does I/O: callers pass `now_ms` (Unix milliseconds), so state can
//! be stored, replayed and tested exactly, and clock skew (an earlier `now`) never corrupts it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use switchboard_crds::config::PersonaConfig;
use switchboard_crds::resources::Relationship;

/// Arousal a mood settles back to when nothing happens.
pub const BASELINE_AROUSAL: f64 = 0.3;
/// Mood half-life: after 6 hours without interactions, half the distance to neutral is gone.
pub const MOOD_HALF_LIFE_MS: i64 = 6 * 60 * 60 * 1000;
/// Largest valence change one interaction can cause (before saturation).
pub const MOOD_STEP: f64 = 0.25;
/// Largest arousal rise one interaction can cause (before saturation).
pub const AROUSAL_STEP: f64 = 0.3;
/// Half-life of affinity and trust drifting back to their starting values: 30 days.
pub const BOND_HALF_LIFE_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// Half-life of familiarity fading toward 0: 60 days.
pub const FAMILIARITY_HALF_LIFE_MS: i64 = 60 * 24 * 60 * 60 * 1000;
/// Familiarity gained by one interaction when the other is a stranger (shrinks as familiarity grows).
pub const FAMILIARITY_STEP: f64 = 5.0;
/// Largest affinity change one interaction can cause (before saturation).
pub const AFFINITY_STEP: f64 = 10.0;
/// Trust gained by a fully warm, fully intense interaction: trust is earned slowly...
pub const TRUST_GAIN: f64 = 3.0;
/// ...and trust lost by a fully hostile, fully intense one: it is lost faster.
pub const TRUST_LOSS: f64 = 6.0;
/// Default trust for a persona with no declared relationship.
pub const DEFAULT_TRUST: f64 = 50.0;

/// The lexicon, space-separated: sentiment words, then words that flip or strengthen the next one.
const POSITIVE: &str = "thanks thank great love helpful wonderful good excellent amazing awesome nice happy \
    glad perfect brilliant fantastic appreciate kind beautiful enjoy pleased delightful lovely grateful fun";
const NEGATIVE: &str = "awful hate useless angry wrong bad terrible horrible stupid annoying annoyed broken \
    worse worst disappointed disappointing sad upset rude poor ugly boring frustrating frustrated pathetic";
const NEGATORS: &str = "not no never don't dont doesn't doesnt isn't isnt wasn't wasnt aren't arent can't \
    cant cannot won't wont didn't didnt hardly nothing";
const INTENSIFIERS: &str = "very really so extremely super incredibly totally absolutely";
/// Weight multiplier per intensifier, and the cap on a single word's weight.
const INTENSIFIER_FACTOR: f64 = 1.5;
const MAX_WORD_WEIGHT: f64 = 3.0;
/// Intensity added per `!` (at most three count).
const EXCLAMATION_BOOST: f64 = 0.15;
/// Trait pairs that complement each other, and the trait-fit bonus per pair present across two personas.
const COMPLEMENTARY: &[(&str, &str)] = &[
    ("curious", "patient"),
    ("playful", "calm"),
    ("precise", "creative"),
    ("bold", "cautious"),
    ("analytical", "empathetic"),
    ("optimistic", "pragmatic"),
];
const COMPLEMENT_BONUS: f64 = 0.25;

/// How an interaction went: valence -1.0 (hostile) ..= 1.0 (warm); `intensity` 0..=1 how strongly.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quality {
    pub valence: f64,
    pub intensity: f64,
}

impl Quality {
    /// An interaction that moves no feelings (it still builds familiarity).
    pub const NEUTRAL: Quality = Quality { valence: 0.0, intensity: 0.0 };

    /// Scores a message with a small English lexicon: negators flip the next sentiment word,
    /// intensifiers strengthen it, `!` raises intensity; punctuation ends a negation's reach.
    /// No sentiment words gives `NEUTRAL`.
    pub fn of_text(text: &str) -> Quality {
        let (mut sum, mut magnitude, mut exclamations) = (0.0_f64, 0.0_f64, 0_u32);
        let (mut negated, mut weight) = (false, 1.0_f64);
        let mut word = String::new();
        for c in text.chars().chain(std::iter::once(' ')) {
            let c = if c == '\u{2019}' { '\'' } else { c };
            if c.is_alphanumeric() || c == '\'' {
                word.extend(c.to_lowercase());
                continue;
            }
            if !word.is_empty() {
                let w = word.trim_matches('\'');
                let sentiment =
                    [(POSITIVE, 1.0), (NEGATIVE, -1.0)].into_iter().find(|(list, _)| listed(list, w));
                if let Some((_, sign)) = sentiment {
                    let signed = (if negated { -sign } else { sign }) * weight;
                    sum += signed;
                    magnitude += signed.abs();
                    (negated, weight) = (false, 1.0);
                } else if listed(NEGATORS, w) {
                    negated = !negated;
                } else if listed(INTENSIFIERS, w) {
                    weight = (weight * INTENSIFIER_FACTOR).min(MAX_WORD_WEIGHT);
                } else {
                    (negated, weight) = (false, 1.0);
                }
                word.clear();
            }
            if matches!(c, '.' | ',' | ';' | ':' | '!' | '?') {
                (negated, weight) = (false, 1.0);
            }
            if c == '!' {
                exclamations += 1;
            }
        }
        if magnitude == 0.0 {
            return Quality::NEUTRAL;
        }
        let boost = EXCLAMATION_BOOST * f64::from(exclamations.min(3));
        Quality {
            valence: (sum / (sum.abs() + 1.0)).clamp(-1.0, 1.0),
            intensity: (magnitude / (magnitude + 1.0) + boost).clamp(0.0, 1.0),
        }
    }

    /// Valence times intensity, with out-of-range or NaN inputs made safe.
    fn strength(self) -> f64 {
        bounded(self.valence, -1.0, 1.0) * bounded(self.intensity, 0.0, 1.0)
    }
}

/// A persona's mood: valence -1..=1 (unhappy..happy), arousal 0..=1 (calm..excited), as of `at_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Mood {
    pub valence: f64,
    pub arousal: f64,
    pub at_ms: i64,
}

impl Mood {
    /// The resting mood: valence 0, arousal `BASELINE_AROUSAL`.
    pub fn neutral(now_ms: i64) -> Mood {
        Mood { valence: 0.0, arousal: BASELINE_AROUSAL, at_ms: now_ms }
    }

    /// Decays exponentially toward neutral with half-life `MOOD_HALF_LIFE_MS`; an earlier `now_ms`
    /// (clock skew) changes nothing.
    pub fn decayed(self, now_ms: i64) -> Mood {
        let Some(k) = decay_factor(self.at_ms, now_ms, MOOD_HALF_LIFE_MS) else { return self };
        Mood {
            valence: self.valence * k,
            arousal: BASELINE_AROUSAL + (self.arousal - BASELINE_AROUSAL) * k,
            at_ms: now_ms,
        }
    }

    /// Decays to now, then moves toward the interaction, saturating so it never leaves the ranges.
    pub fn after(self, quality: Quality, now_ms: i64) -> Mood {
        let m = self.decayed(now_ms);
        let intensity = bounded(quality.intensity, 0.0, 1.0);
        Mood {
            valence: saturate(m.valence, MOOD_STEP * quality.strength(), 1.0),
            arousal: (m.arousal + AROUSAL_STEP * intensity * (1.0 - m.arousal)).clamp(0.0, 1.0),
            at_ms: m.at_ms,
        }
    }

    /// The length of the longest word [`Mood::describe`] answers ("irritated").
    pub const LONGEST_WORD: usize = 9;

    /// One word for the system prompt.
    pub fn describe(&self) -> &'static str {
        let excited = self.arousal >= 0.6;
        match self.valence {
            v if v >= 0.4 && excited => "excited",
            v if v >= 0.4 => "cheerful",
            v if v >= 0.15 => "content",
            v if v > -0.15 && excited => "alert",
            v if v > -0.15 => "calm",
            v if v > -0.4 => "irritated",
            _ => "upset",
        }
    }
}

/// One persona's relationship with another: affinity -100..=100, trust 0..=100, familiarity 0..=100.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bond {
    pub affinity: f64,
    pub trust: f64,
    pub familiarity: f64,
    pub interactions: u64,
    pub last_interaction_ms: Option<i64>,
    pub at_ms: i64,
}

impl Bond {
    /// The starting point: the Persona spec's `relationships` entry if any (clamped to range), else
    /// affinity 0, trust `DEFAULT_TRUST`. Familiarity starts at 0 either way.
    pub fn initial(start: Option<&Relationship>, now_ms: i64) -> Bond {
        let (affinity, trust) = start.map_or((0.0, DEFAULT_TRUST), |r| {
            (f64::from(r.affinity.clamp(-100, 100)), f64::from(r.trust.clamp(0, 100)))
        });
        Bond { affinity, trust, familiarity: 0.0, interactions: 0, last_interaction_ms: None, at_ms: now_ms }
    }

    /// Time without contact: affinity and trust drift back to their starting values (half-life
    /// `BOND_HALF_LIFE_MS`), familiarity fades toward 0 (`FAMILIARITY_HALF_LIFE_MS`).
    pub fn decayed(self, start: Option<&Relationship>, now_ms: i64) -> Bond {
        let Some(k) = decay_factor(self.at_ms, now_ms, BOND_HALF_LIFE_MS) else { return self };
        let kf = decay_factor(self.at_ms, now_ms, FAMILIARITY_HALF_LIFE_MS).unwrap_or(1.0);
        let base = Bond::initial(start, now_ms);
        Bond {
            affinity: base.affinity + (self.affinity - base.affinity) * k,
            trust: base.trust + (self.trust - base.trust) * k,
            familiarity: self.familiarity * kf,
            at_ms: now_ms,
            ..self
        }
    }

    /// Decays to now, then applies one interaction. Familiarity always grows; affinity follows the
    /// interaction's valence (saturating); trust rises by up to `TRUST_GAIN` and falls by up to `TRUST_LOSS`.
    pub fn after(self, start: Option<&Relationship>, quality: Quality, now_ms: i64) -> Bond {
        let b = self.decayed(start, now_ms);
        let s = quality.strength();
        let trust_delta = if s >= 0.0 { TRUST_GAIN * s } else { TRUST_LOSS * s };
        let familiarity = b.familiarity.clamp(0.0, 100.0);
        Bond {
            affinity: saturate(b.affinity, AFFINITY_STEP * s, 100.0),
            trust: (b.trust + trust_delta).clamp(0.0, 100.0),
            familiarity: (familiarity + FAMILIARITY_STEP * (1.0 - familiarity / 100.0)).clamp(0.0, 100.0),
            interactions: b.interactions.saturating_add(1),
            last_interaction_ms: Some(now_ms),
            at_ms: b.at_ms,
        }
    }

    /// One sentence for the system prompt, e.g. "You know Grace well and like them; you trust them."
    /// The most bytes [`Bond::describe`] writes about `other`: its template with the longest
    /// choice of each part ("know" + " fairly well", "feel neutral about them", "you are unsure
    /// whether to trust them").
    pub fn description_bound(other: &str) -> usize {
        let template = ["You ", " ", " and ", "; ", "."].concat().len();
        template
            + other.len()
            + "know fairly well".len()
            + "feel neutral about them".len()
            + "you are unsure whether to trust them".len()
    }

    pub fn describe(&self, other: &str) -> String {
        let (verb, how) = match self.familiarity {
            f if f >= 60.0 => ("know", " well"),
            f if f >= 25.0 => ("know", " fairly well"),
            f if f >= 5.0 => ("know", " a little"),
            _ => ("barely know", ""),
        };
        let feeling = match self.affinity {
            a if a >= 60.0 => "like them a lot",
            a if a >= 20.0 => "like them",
            a if a > -20.0 => "feel neutral about them",
            a if a > -60.0 => "dislike them",
            _ => "strongly dislike them",
        };
        let trust = match self.trust {
            t if t >= 70.0 => "you trust them",
            t if t > 35.0 => "you are unsure whether to trust them",
            _ => "you do not trust them",
        };
        format!("You {verb} {other}{how} and {feeling}; {trust}.")
    }
}

/// How well two personas fit, from traits and shared interests, 0..=100.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compatibility {
    pub score: u8,
    pub shared_interests: Vec<String>,
    pub shared_traits: Vec<String>,
}

/// Symmetric, case-insensitive fit: 60% interest overlap (Jaccard), 40% trait fit (Jaccard plus a
/// bonus per complementary pair, capped at 1). An empty side counts as unknown (0.5), so two
/// personas with nothing declared score 50.
pub fn compatibility(a: &PersonaConfig, b: &PersonaConfig) -> Compatibility {
    let (ia, ib) = (normalized(&a.interests), normalized(&b.interests));
    let (ta, tb) = (normalized(&a.traits), normalized(&b.traits));
    let bonus = COMPLEMENTARY
        .iter()
        .filter(|&&(x, y)| (ta.contains(x) && tb.contains(y)) || (ta.contains(y) && tb.contains(x)))
        .count() as f64
        * COMPLEMENT_BONUS;
    let trait_fit = if ta.is_empty() && tb.is_empty() { 0.5 } else { (jaccard(&ta, &tb) + bonus).min(1.0) };
    let interest_fit = if ia.is_empty() && ib.is_empty() { 0.5 } else { jaccard(&ia, &ib) };
    let score = (100.0 * (0.6 * interest_fit + 0.4 * trait_fit)).round().clamp(0.0, 100.0) as u8;
    Compatibility {
        score,
        shared_interests: ia.intersection(&ib).cloned().collect(),
        shared_traits: ta.intersection(&tb).cloned().collect(),
    }
}

fn normalized(items: &[String]) -> BTreeSet<String> {
    items.iter().map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty()).collect()
}

fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 { 0.0 } else { a.intersection(b).count() as f64 / union as f64 }
}

/// `0.5^(elapsed / half_life)`, or `None` when no time has passed (or the clock went backwards).
fn decay_factor(at_ms: i64, now_ms: i64, half_life_ms: i64) -> Option<f64> {
    let elapsed = now_ms.checked_sub(at_ms).filter(|&d| d > 0)?;
    Some(0.5_f64.powf(elapsed as f64 / half_life_ms as f64))
}

/// Moves `x` (in the symmetric range `-limit..=limit`) by `delta` at the midpoint, scaled by the room
/// left in that direction: `x += delta * (1 - |x|/limit)` when moving outward, so it never leaves the range.
fn saturate(x: f64, delta: f64, limit: f64) -> f64 {
    let x = bounded(x, -limit, limit);
    let room = if delta >= 0.0 { limit - x } else { x + limit };
    (x + delta * room / limit).clamp(-limit, limit)
}

/// Whether `word` is one of the space-separated `list`.
fn listed(list: &str, word: &str) -> bool {
    list.split(' ').any(|w| w == word)
}

/// Clamps, treating NaN as 0.
fn bounded(x: f64, lo: f64, hi: f64) -> f64 {
    if x.is_nan() { lo.max(0.0).min(hi) } else { x.clamp(lo, hi) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = MOOD_HALF_LIFE_MS;
    const DAY: i64 = 24 * 60 * 60 * 1000;
    const WARM: Quality = Quality { valence: 0.8, intensity: 0.9 };
    const HOSTILE: Quality = Quality { valence: -0.8, intensity: 0.9 };

    #[test]
    fn descriptions_stay_within_their_bounds() {
        let steps = |lo: f64, hi: f64| (0..=40).map(move |i| lo + (hi - lo) * f64::from(i) / 40.0);
        for valence in steps(-1.0, 1.0) {
            for arousal in steps(0.0, 1.0) {
                assert!(Mood { valence, arousal, at_ms: 0 }.describe().len() <= Mood::LONGEST_WORD);
            }
        }
        for affinity in steps(-100.0, 100.0) {
            for trust in steps(0.0, 100.0) {
                for familiarity in steps(0.0, 100.0) {
                    let bond = Bond { affinity, trust, familiarity, ..Bond::initial(None, 0) };
                    assert!(bond.describe("Ada").len() <= Bond::description_bound("Ada"), "{bond:?}");
                }
            }
        }
    }

    fn rel(affinity: i32, trust: i32) -> Relationship {
        Relationship { persona: "grace".into(), affinity, trust }
    }

    fn persona(traits: &[&str], interests: &[&str]) -> PersonaConfig {
        PersonaConfig {
            name: "p".into(),
            namespace: "ns".into(),
            tenant: "t".into(),
            display_name: None,
            system_prompt: "hi".into(),
            traits: traits.iter().map(|s| s.to_string()).collect(),
            interests: interests.iter().map(|s| s.to_string()).collect(),
            model: "m".into(),
            memory: Default::default(),
            shared_with_tenants: Default::default(),
            relationships: vec![],
            rate_limits: Default::default(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn quality_scores_text() {
        let pos = Quality::of_text("Thanks, that was GREAT");
        assert!(pos.valence > 0.0 && pos.intensity > 0.0);
        assert!(Quality::of_text("This is useless and wrong.").valence < 0.0);
        assert!(Quality::of_text("that was not helpful").valence < 0.0);
        assert!(Quality::of_text("that wasn\u{2019}t very good").valence < 0.0);
        assert!(Quality::of_text("not bad at all").valence > 0.0);
        assert!(Quality::of_text("No. Thanks").valence > 0.0, "punctuation ends a negation");
        assert_eq!(Quality::of_text("The meeting is at 3pm, see the agenda!"), Quality::NEUTRAL);
        assert_eq!(Quality::of_text("goodbye, badge holder"), Quality::NEUTRAL, "whole words only");
        assert_eq!(Quality::of_text(""), Quality::NEUTRAL);
        for list in [POSITIVE, NEGATIVE] {
            assert!(list.split(' ').count() >= 25 && list.split(' ').all(|w| !w.is_empty()));
        }
    }

    #[test]
    fn intensifiers_and_exclamations_strengthen() {
        let plain = Quality::of_text("this is helpful");
        let strong = Quality::of_text("this is really very helpful");
        assert!(strong.valence > plain.valence && strong.intensity > plain.intensity);
        assert!(Quality::of_text("this is helpful!!").intensity > plain.intensity);
        assert!(Quality::of_text("so awful").valence < Quality::of_text("awful").valence);
    }

    #[test]
    fn quality_stays_in_range() {
        let q = Quality::of_text(&"absolutely wonderful, amazing love!!! ".repeat(50));
        assert!(q.valence > 0.9 && q.valence <= 1.0 && q.intensity <= 1.0);
        let q = Quality::of_text(&"hate awful ".repeat(50));
        assert!(q.valence < -0.9 && q.valence >= -1.0 && q.intensity <= 1.0);
    }

    #[test]
    fn mood_follows_interactions_and_saturates() {
        let m = Mood::neutral(0);
        assert!(m.after(WARM, 0).valence > 0.0 && m.after(WARM, 0).arousal > BASELINE_AROUSAL);
        assert!(m.after(HOSTILE, 0).valence < 0.0);
        let mut m = Mood::neutral(0);
        for i in 0..1000 {
            m = m.after(Quality { valence: 1.0, intensity: 1.0 }, i);
            assert!(m.valence <= 1.0 && m.arousal <= 1.0);
        }
        assert!(m.valence > 0.99);
        assert_eq!(m.describe(), "excited");
    }

    #[test]
    fn mood_decays_with_half_life() {
        let m = Mood { valence: 0.8, arousal: 0.9, at_ms: 1_000 };
        let d = m.decayed(1_000 + H);
        assert!(close(d.valence, 0.4) && close(d.arousal, 0.6) && d.at_ms == 1_000 + H);
        let k = 0.5_f64.powf(2.5);
        let d = m.decayed(1_000 + 5 * H / 2);
        assert!(close(d.valence, 0.8 * k) && close(d.arousal, BASELINE_AROUSAL + 0.6 * k));
        let stepwise = m.decayed(1_000 + H).decayed(1_000 + 5 * H / 2);
        assert!(close(stepwise.valence, d.valence) && close(stepwise.arousal, d.arousal));
        let far = m.decayed(1_000 + 10 * H);
        assert!(far.valence.abs() < 1e-3 && (far.arousal - BASELINE_AROUSAL).abs() < 1e-3);
        assert_eq!(m.decayed(0), m);
        assert_eq!(m.after(Quality::NEUTRAL, 0), m);
    }

    #[test]
    fn mood_description_follows_valence() {
        let at = |valence, arousal| Mood { valence, arousal, at_ms: 0 }.describe();
        let seen = [at(0.7, 0.9), at(0.7, 0.3), at(0.2, 0.3), at(0.0, 0.3), at(-0.2, 0.3), at(-0.8, 0.3)];
        assert_eq!(seen, ["excited", "cheerful", "content", "calm", "irritated", "upset"]);
    }

    #[test]
    fn bond_starts_from_spec_or_default() {
        let b = Bond::initial(Some(&rel(40, 80)), 5);
        assert_eq!((b.affinity, b.trust, b.familiarity, b.interactions), (40.0, 80.0, 0.0, 0));
        assert_eq!((b.last_interaction_ms, b.at_ms), (None, 5));
        let d = Bond::initial(None, 5);
        assert_eq!((d.affinity, d.trust, d.familiarity), (0.0, 50.0, 0.0));
        let wild = Bond::initial(Some(&rel(500, -3)), 0);
        assert_eq!((wild.affinity, wild.trust), (100.0, 0.0));
    }

    #[test]
    fn warm_interactions_build_the_bond() {
        let start = Bond::initial(None, 0);
        let mut b = start;
        for i in 1..=5 {
            b = b.after(None, WARM, i * 60_000);
        }
        assert!(b.affinity > start.affinity && b.trust > start.trust && b.familiarity > 0.0);
        assert_eq!((b.interactions, b.last_interaction_ms), (5, Some(300_000)));
        let n = start.after(None, Quality::NEUTRAL, 10);
        assert!(n.familiarity > 0.0 && close(n.affinity, 0.0) && close(n.trust, 50.0));
        assert_eq!(
            start.describe("Grace"),
            "You barely know Grace and feel neutral about them; you are unsure whether to trust them."
        );
        let close_friend = Bond { affinity: 50.0, trust: 90.0, familiarity: 80.0, ..start };
        assert_eq!(close_friend.describe("Grace"), "You know Grace well and like them; you trust them.");
    }

    #[test]
    fn trust_falls_faster_than_it_rises() {
        let b = Bond::initial(None, 0);
        let up = b.after(None, WARM, 0).trust - b.trust;
        let down = b.trust - b.after(None, HOSTILE, 0).trust;
        assert!(up > 0.0 && down > up);
        assert!(close(down / up, TRUST_LOSS / TRUST_GAIN));
    }

    #[test]
    fn bond_decays_toward_spec_values() {
        let r = rel(40, 80);
        let b = Bond {
            affinity: -20.0,
            trust: 20.0,
            familiarity: 60.0,
            interactions: 3,
            last_interaction_ms: Some(7),
            at_ms: 0,
        };
        let d = b.decayed(Some(&r), 30 * DAY);
        assert!(close(d.affinity, 10.0) && close(d.trust, 50.0));
        assert!(close(d.familiarity, 60.0 * 0.5_f64.sqrt()));
        assert!(close(b.decayed(Some(&r), 60 * DAY).familiarity, 30.0));
        assert_eq!((d.interactions, d.last_interaction_ms), (3, Some(7)));
        let far = b.decayed(Some(&r), 3650 * DAY);
        assert!((far.affinity - 40.0).abs() < 1e-6 && (far.trust - 80.0).abs() < 1e-6);
        assert_eq!(b.decayed(Some(&r), -5), b);
    }

    #[test]
    fn ranges_hold_under_random_interactions() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 11) as f64 / (1_u64 << 53) as f64
        };
        let r = rel(-30, 70);
        let (mut mood, mut bond, mut now) = (Mood::neutral(0), Bond::initial(Some(&r), 0), 0_i64);
        for _ in 0..5000 {
            let q = Quality { valence: next() * 3.0 - 1.5, intensity: next() * 1.4 - 0.2 };
            now += (next() * 2.0 * DAY as f64) as i64 - DAY / 4;
            mood = mood.after(q, now);
            bond = bond.after(Some(&r), q, now);
            assert!((-1.0..=1.0).contains(&mood.valence) && (0.0..=1.0).contains(&mood.arousal));
            assert!((-100.0..=100.0).contains(&bond.affinity) && (0.0..=100.0).contains(&bond.trust));
            assert!((0.0..=100.0).contains(&bond.familiarity));
        }
        assert_eq!(bond.interactions, 5000);
    }

    #[test]
    fn compatibility_scores_overlap_and_complements() {
        let a = persona(&["curious", "Precise"], &["Rust", "chess", "jazz"]);
        let b = persona(&["patient", "creative"], &[" rust ", "Jazz", "hiking"]);
        let ab = compatibility(&a, &b);
        assert_eq!(ab, compatibility(&b, &a));
        assert_eq!(
            (ab.score, ab.shared_interests.clone()),
            (50, vec!["jazz".to_string(), "rust".to_string()])
        );
        let plain = compatibility(&a, &persona(&["grumpy", "loud"], &["rust", "jazz", "hiking"]));
        assert_eq!(plain.score, 30, "no complementary bonus");
        let same = compatibility(&a, &persona(&[], &["CHESS", "jazz", "rust"]));
        let disjoint = compatibility(&a, &persona(&[], &["golf"]));
        assert!(same.score > disjoint.score);
        assert_eq!(compatibility(&persona(&[], &[]), &persona(&[], &[])).score, 50);
        let loud = compatibility(&persona(&["CURIOUS"], &["Rust"]), &persona(&[" curious"], &["rust"]));
        assert_eq!((loud.score, loud.shared_traits), (100, vec!["curious".to_string()]));
    }
}
