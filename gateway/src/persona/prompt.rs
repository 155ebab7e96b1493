//! The system message a persona speaks with: its prompt, personality, mood, how it feels about
//! the persona it talks to, and what it remembers, in that order, within a token budget for the
//! memories.

use switchboard_crds::config::PersonaConfig;

use super::affect::{Bond, Mood};
use super::memory::Memory;
use crate::usage::estimate_tokens;

/// What shapes one conversation's system message besides the persona itself.
#[derive(Clone, Debug, Default)]
pub struct Context<'a> {
    pub mood: Option<Mood>,
    /// The persona on the other side, by display name, and this persona's bond with it.
    pub partner: Option<(&'a str, Bond)>,
    /// Recalled memories, best first.
    pub memories: &'a [Memory],
}

const MOOD_INTRO: &str = "\nYour mood right now: ";
const PARTNER_INTRO: &str = "\nYou are talking with ";
const PARTNER_OUTRO: &str = ", another assistant. ";
const MEMORY_INTRO: &str =
    "\n\nWhat you remember about the person you are talking with (most relevant first):";
const MEMORY_BULLET: &str = "\n- ";

/// The system message, and how many of the memories fit in it.
pub fn system_message(persona: &PersonaConfig, context: &Context<'_>) -> (String, usize) {
    let mut text = persona.system_prompt.trim().to_owned();
    if let Some(line) = personality(persona) {
        text.push_str("\n\n");
        text.push_str(&line);
    }
    if let Some(mood) = context.mood {
        text.push_str(&format!("{MOOD_INTRO}{}.", mood.describe()));
    }
    if let Some((name, bond)) = &context.partner {
        text.push_str(&format!("{PARTNER_INTRO}{name}{PARTNER_OUTRO}{}", bond.describe(name)));
    }
    let budget = u64::from(persona.memory.max_injected_tokens);
    let mut used = 0;
    let mut included = 0;
    for memory in context.memories {
        let cost = estimate_tokens(memory.content.len() + MEMORY_BULLET.len());
        if used + cost > budget {
            break;
        }
        if included == 0 {
            text.push_str(MEMORY_INTRO);
        }
        text.push_str(MEMORY_BULLET);
        text.push_str(&memory.content);
        used += cost;
        included += 1;
    }
    (text, included)
}

/// The most bytes [`system_message`] writes for `persona` talking with a partner of that display
/// name, whatever the mood, the bond and the memories: what admission reserves for before any of
/// them is read. Each memory costs `estimate_tokens(bytes + bullet)`, at least a quarter of its
/// bytes, so the memories' lines are at most four bytes per token of `maxInjectedTokens`.
pub fn system_message_bound(persona: &PersonaConfig, partner: Option<&str>) -> usize {
    let (bare, _) = system_message(persona, &Context::default());
    let mood = MOOD_INTRO.len() + Mood::LONGEST_WORD + 1;
    let partner = partner.map_or(0, |name| {
        PARTNER_INTRO.len() + name.len() + PARTNER_OUTRO.len() + Bond::description_bound(name)
    });
    let memories = MEMORY_INTRO.len() + 4 * persona.memory.max_injected_tokens as usize;
    bare.len() + mood + partner + memories
}

fn personality(persona: &PersonaConfig) -> Option<String> {
    let traits = list(&persona.traits);
    let interests = list(&persona.interests);
    match (traits, interests) {
        (None, None) => None,
        (Some(traits), None) => Some(format!("Your personality: {traits}.")),
        (None, Some(interests)) => Some(format!("You care about {interests}.")),
        (Some(traits), Some(interests)) => {
            Some(format!("Your personality: {traits}. You care about {interests}."))
        }
    }
}

/// "a", "a and b", "a, b and c".
fn list(items: &[String]) -> Option<String> {
    match items {
        [] => None,
        [one] => Some(one.clone()),
        [init @ .., last] => Some(format!("{} and {last}", init.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persona::memory::MemoryKind;
    use crate::persona::sharing::tests::persona;
    use switchboard_crds::resources::MemorySharingScope;

    fn memory(content: &str) -> Memory {
        Memory {
            id: content.into(),
            persona: "ada".into(),
            subject: "grace".into(),
            kind: MemoryKind::Fact,
            content: content.into(),
            importance: 5,
            created_at_ms: 0,
            last_used_at_ms: 0,
            use_count: 0,
            slot: None,
            superseded_at_ms: None,
            superseded_by: None,
            score: None,
        }
    }

    #[test]
    fn prompt_personality_mood_partner_and_memories_in_order() {
        let mut ada = persona("ada", "demo", MemorySharingScope::Private, &[]);
        ada.traits = vec!["precise".into(), "curious".into(), "friendly".into()];
        ada.interests = vec!["engines".into()];
        let memories = [memory("My name is Grace."), memory("I love sailing.")];
        let context = Context {
            mood: Some(Mood { valence: 0.0, arousal: 0.3, at_ms: 0 }),
            partner: Some(("Linus", Bond::initial(None, 0))),
            memories: &memories,
        };
        let (text, included) = system_message(&ada, &context);
        let mood = Mood { valence: 0.0, arousal: 0.3, at_ms: 0 }.describe();
        let bond = Bond::initial(None, 0).describe("Linus");
        assert_eq!(
            text,
            format!(
                "You are ada.\n\nYour personality: precise, curious and friendly. You care about engines.\n\
                 Your mood right now: {mood}.\nYou are talking with Linus, another assistant. {bond}\n\n\
                 What you remember about the person you are talking with (most relevant first):\n\
                 - My name is Grace.\n- I love sailing."
            )
        );
        assert_eq!(included, 2);
    }

    #[test]
    fn the_bound_holds_for_the_longest_mood_bond_and_memories() {
        let mut ada = persona("ada", "demo", MemorySharingScope::Private, &[]);
        ada.traits = vec!["precise".into(), "curious".into()];
        ada.memory.max_injected_tokens = 40;
        // Short memories waste the most of the budget on rounding; one byte each is the worst.
        let tiny: Vec<Memory> = (0..200).map(|_| memory("x")).collect();
        let long: Vec<Memory> = (0..5).map(|i| memory(&"y".repeat(37 + i))).collect();
        let bond = Bond { affinity: -100.0, trust: 50.0, familiarity: 30.0, ..Bond::initial(None, 0) };
        for memories in [&tiny[..], &long[..], &[]] {
            for valence in [-1.0, -0.3, 0.0, 0.3, 1.0] {
                let context = Context {
                    mood: Some(Mood { valence, arousal: 0.9, at_ms: 0 }),
                    partner: Some(("Linus Torvalds", bond)),
                    memories,
                };
                let (text, _) = system_message(&ada, &context);
                assert!(text.len() <= system_message_bound(&ada, Some("Linus Torvalds")), "{text}");
            }
        }
        let (alone, _) = system_message(&ada, &Context::default());
        assert!(system_message_bound(&ada, None) >= alone.len() + 4 * 40);
    }

    #[test]
    fn memories_stop_at_the_token_budget() {
        let mut ada = persona("ada", "demo", MemorySharingScope::Private, &[]);
        ada.memory.max_injected_tokens = 10;
        let memories = [memory("twenty-one characters"), memory("another twenty chars"), memory("x")];
        let (text, included) = system_message(&ada, &Context { memories: &memories, ..Context::default() });
        assert_eq!(included, 1, "{text}");
        assert!(text.ends_with("- twenty-one characters"));
        ada.memory.max_injected_tokens = 0;
        assert_eq!(system_message(&ada, &Context { memories: &memories, ..Context::default() }).1, 0);
    }
}
