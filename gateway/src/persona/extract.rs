//! Rule-based memory extraction: the sentences of a user's message worth remembering, with a
//! kind and an importance.
//!
//! Deliberately conservative: only first-person statements that match a known shape (a name, a
//! preference, a fact about the speaker, an event, or an explicit "remember that ...") become
//! memories; questions and chatter do not. What is stored is the speaker's own sentence, so
//! nothing is invented.

use super::memory::{MemoryKind, NewMemory, content_key, slot_key};

/// Longest sentence kept as a memory, in characters.
const MAX_SENTENCE: usize = 300;
/// Memories taken from one message at most.
const MAX_PER_MESSAGE: usize = 8;

/// Words that make a statement matter more.
const EMPHASIS: &[&str] = &["important", "always", "never", "allergic", "must", "seriously", "birthday"];

/// The memories in one user message.
pub fn memories_in(message: &str) -> Vec<NewMemory> {
    let mut found: Vec<NewMemory> = Vec::new();
    for sentence in sentences(message) {
        let Some(memory) = classify(sentence) else { continue };
        if !found.iter().any(|m| content_key(&m.content) == content_key(&memory.content)) {
            found.push(memory);
        }
        if found.len() == MAX_PER_MESSAGE {
            break;
        }
    }
    found
}

/// Splits after sentence ends and at line breaks, keeping each sentence's final punctuation. A
/// period ends a sentence only before whitespace and not after a title ("Dr. Ruiz"), so numbers
/// and host names stay whole.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let end = match c {
            '!' | '?' | ';' | '\n' => true,
            '.' => next.is_none_or(char::is_whitespace) && !after_title(&text[start..at]),
            _ => false,
        };
        if end {
            out.push(text[start..at + c.len_utf8()].trim());
            start = at + c.len_utf8();
        }
    }
    out.push(text[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// Whether `before` ends with a title abbreviation.
fn after_title(before: &str) -> bool {
    let word = before.rsplit(|c: char| !c.is_alphanumeric()).next().unwrap_or_default().to_lowercase();
    TITLES.contains(&word.as_str())
}

const TITLES: &[&str] = &["dr", "mr", "mrs", "ms", "prof", "st", "mt", "jr", "sr", "vs", "etc", "eg", "ie"];

/// Openings of explicit requests to remember; what follows them is stored.
const REQUESTS: &[&str] =
    &["please remember that ", "remember that ", "remember: ", "don't forget that ", "note that "];
/// An explicit request's importance.
const REQUESTED: u8 = 9;

/// Sentence openings, tried in this order, with the kind and base importance they give.
const RULES: &[(MemoryKind, u8, &[&str])] = &[
    (MemoryKind::Fact, 8, &["my name is ", "call me ", "i go by "]),
    (MemoryKind::Preference, 7, &["i love ", "i hate ", "i can't stand ", "i cannot stand ", "i adore "]),
    (
        MemoryKind::Preference,
        6,
        &[
            "i like ",
            "i really like ",
            "i enjoy ",
            "i prefer ",
            "i dislike ",
            "i don't like ",
            "i do not like ",
            "my favorite ",
            "my favourite ",
        ],
    ),
    (
        MemoryKind::Event,
        5,
        &[
            "yesterday ",
            "today ",
            "last week ",
            "last month ",
            "last year ",
            "this morning ",
            "i went ",
            "i visited ",
            "i just ",
            "i recently ",
            "i started ",
            "i finished ",
        ],
    ),
    (
        MemoryKind::Fact,
        6,
        &[
            "i am ",
            "i'm ",
            "i work ",
            "i live ",
            "i now live ",
            "i moved to ",
            "i have ",
            "i've got ",
            "i was born ",
            "i speak ",
            "i study ",
            "i own ",
            "my ",
        ],
    ),
];

fn classify(sentence: &str) -> Option<NewMemory> {
    if sentence.ends_with('?') || sentence.chars().count() > MAX_SENTENCE {
        return None;
    }
    let lower = sentence.to_lowercase();
    let lower = lower.trim_end_matches(['.', '!', ';']);
    let (kind, base, content, stated) = match REQUESTS.iter().find_map(|p| lower.strip_prefix(p)) {
        Some(rest) => (MemoryKind::Fact, REQUESTED, tail(sentence, rest), rest),
        None => {
            let (kind, base, _) =
                RULES.iter().find(|(_, _, openings)| openings.iter().any(|o| lower.starts_with(o)))?;
            (*kind, *base, sentence.to_owned(), lower)
        }
    };
    // A bare "I am." or "My cat." says nothing.
    if content.split_whitespace().count() < 3 {
        return None;
    }
    let emphasis =
        EMPHASIS.iter().any(|word| lower.split(|c: char| !c.is_alphanumeric()).any(|w| w == *word));
    let importance = if emphasis { base + 2 } else { base };
    Some(NewMemory { kind, content, importance: importance.min(10), slot: slot_of(stated) })
}

/// Openings that state an attribute the speaker has one of at a time, and its slot.
const SLOTS: &[(&str, &str)] = &[
    ("my name is ", "name"),
    ("call me ", "name"),
    ("i go by ", "name"),
    ("i live in ", "home"),
    ("i live at ", "home"),
    ("i now live ", "home"),
    ("i moved to ", "home"),
    ("i work as ", "job"),
    ("i work at ", "job"),
    ("i work for ", "job"),
];

/// The slot of a lowercase statement: a known opening's, or the one to three words of "my ... is"
/// or "my ... are" ("my car is ...": `car`; "my favourite colour is ...": `favourite colour`), so
/// that "My car is a Volvo" later supersedes "My car is a Toyota". Other statements (an allergy, a
/// liking) may hold many values at once and have none.
fn slot_of(statement: &str) -> Option<String> {
    if let Some((_, slot)) = SLOTS.iter().find(|(opening, _)| statement.starts_with(opening)) {
        return Some((*slot).to_owned());
    }
    let words: Vec<&str> = statement.strip_prefix("my ")?.split_whitespace().collect();
    let verb = words.iter().position(|w| *w == "is" || *w == "are")?;
    (1..=3).contains(&verb).then(|| slot_key(&words[..verb].join(" "))).flatten()
}

/// The part of `sentence` (original case) that `rest` (a suffix of its lowercase form) covers,
/// with its first letter capitalised.
fn tail(sentence: &str, rest: &str) -> String {
    let chars = rest.chars().count();
    let total = sentence.trim_end_matches(['.', '!', ';']).chars().count();
    let original: String = sentence.chars().skip(total.saturating_sub(chars)).take(chars).collect();
    let mut letters = original.chars();
    match letters.next() {
        Some(first) => first.to_uppercase().chain(letters).collect(),
        None => original,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(message: &str) -> Vec<(MemoryKind, String, u8)> {
        memories_in(message).into_iter().map(|m| (m.kind, m.content, m.importance)).collect()
    }

    #[test]
    fn statements_become_memories_with_kind_and_importance() {
        assert_eq!(
            kinds("Hi! My name is Grace Hopper. I love sailing on weekends. How are you?"),
            [
                (MemoryKind::Fact, "My name is Grace Hopper.".to_owned(), 8),
                (MemoryKind::Preference, "I love sailing on weekends.".to_owned(), 7),
            ]
        );
        assert_eq!(
            kinds("Yesterday I visited the Louvre in Paris"),
            [(MemoryKind::Event, "Yesterday I visited the Louvre in Paris".to_owned(), 5)]
        );
    }

    #[test]
    fn explicit_requests_and_emphasis_weigh_more() {
        assert_eq!(
            kinds("Please remember that my dentist is Dr. Ruiz!"),
            [(MemoryKind::Fact, "My dentist is Dr. Ruiz".to_owned(), 9)]
        );
        assert_eq!(kinds("I am allergic to peanuts.")[0].2, 8);
    }

    #[test]
    fn questions_and_chatter_are_not_remembered() {
        assert!(memories_in("What is my name? Tell me a joke. Sure.").is_empty());
        assert!(memories_in("I am.").is_empty());
    }

    #[test]
    fn single_valued_statements_name_their_slot() {
        let slots = |message: &str| -> Vec<Option<String>> {
            memories_in(message).into_iter().map(|m| m.slot).collect()
        };
        let some = |slot: &str| Some(slot.to_owned());
        assert_eq!(
            slots("I live in Leeds. I moved to York last spring. My car is a red Toyota. I work as a nurse."),
            [some("home"), some("home"), some("car"), some("job")]
        );
        assert_eq!(
            slots("My favourite colour is green. My name is Grace."),
            [some("favourite colour"), some("name")]
        );
        assert_eq!(slots("Remember that my dentist is Dr. Ruiz."), [some("dentist")]);
        // Many values at once, or no "is" close enough: no slot.
        assert_eq!(
            slots("I am allergic to peanuts. I love jazz. My uncle has a house in Lyon."),
            [None, None, None]
        );
        assert_eq!(slots("My old friend from the navy is visiting."), [None]);
    }

    #[test]
    fn one_message_gives_each_memory_once() {
        assert_eq!(memories_in("I like tea. i like tea. I like tea!").len(), 1);
    }
}
