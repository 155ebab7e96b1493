//! The persona stores against both databases: SQLite (FTS5) and a real PostgreSQL (tsvector;
//! `make test` starts one). Retrieval quality on a corpus, dedup, retention, export and forget,
//! tenant isolation, sharing, and moods and relationships with time injected.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use switchboard_crds::resources::{MemorySharingScope, RecallWeights, Relationship};
use switchboard_gateway::db::Database;
use switchboard_gateway::persona::Personas;
use switchboard_gateway::persona::affect::{BOND_HALF_LIFE_MS, MOOD_HALF_LIFE_MS, Quality};
use switchboard_gateway::persona::memory::{MemoryKind, NewMemory, Owner, Retention};
use switchboard_gateway::persona::recall::Query;
use switchboard_gateway::persona::vectors::{Meaning, Scope};

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_800_000_000_000;

/// A store on a fresh SQLite file and one on a fresh PostgreSQL schema.
async fn both() -> Vec<(&'static str, Personas, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("ledger.db").display());
    let sqlite = Database::connect(&sqlite).await.unwrap();
    let postgres = Database::connect(&common::fresh_postgres().await).await.unwrap();
    vec![
        ("sqlite", Personas::new(&sqlite), dir),
        ("postgres", Personas::new(&postgres), tempfile::tempdir().unwrap()),
    ]
}

const WEIGHTS: RecallWeights = RecallWeights {
    meaning_weight: 70,
    importance_weight: 50,
    recency_weight: 40,
    recency_half_life_days: 30,
};

/// A recall by words alone, with the default weights.
fn words(text: &str) -> Query<'_> {
    Query { text, meaning: None, weights: &WEIGHTS }
}

fn fact(content: &str, importance: u8) -> NewMemory {
    NewMemory { kind: MemoryKind::Fact, content: content.into(), importance, slot: None }
}

fn owner<'a>(persona: &'a str, subject: &'a str) -> Owner<'a> {
    Owner { tenant: "demo", persona, subject }
}

/// (memory, a query that should find it) pairs: paraphrases with other word forms.
const TARGETS: &[(&str, &str)] = &[
    ("My sister Maria lives in Lisbon.", "where does my sister live"),
    ("I am allergic to peanuts and cashews.", "any food allergies"),
    ("My dog is a beagle called Biscuit.", "what breed is the dog"),
    ("I work as a nurse at the children's hospital.", "what is my job at the hospital"),
    ("I love sailing on the lake at weekends.", "do I like to sail"),
    ("My favourite composer is Johann Sebastian Bach.", "which composer do I prefer"),
    ("I drive an old blue Volvo station wagon.", "what car do I drive"),
    ("My daughter Emma starts university in October.", "when does my daughter start university"),
    ("I am learning Japanese with evening classes.", "which language am I learning"),
    ("I run a marathon every spring in Berlin.", "marathon running"),
    ("My wife is a veterinarian.", "what does my wife do"),
    ("I hate cilantro, it tastes like soap.", "herbs I hate"),
    ("I was born in Nairobi, Kenya.", "where was I born"),
    ("My birthday is on the 14th of March.", "birthday date"),
    ("I play the cello in a community orchestra.", "which instrument do I play"),
    ("I prefer tea over coffee, especially green tea.", "tea or coffee"),
    ("My grandfather built wooden boats in Norway.", "grandfather boats"),
    ("I am vegetarian since 2015.", "do I eat meat vegetarian"),
    ("I live in a flat above a bakery in Leeds.", "where do I live"),
    ("My password manager is Bitwarden.", "password manager"),
    ("I speak Spanish and Portuguese fluently.", "languages spoken fluently"),
    ("I broke my left wrist skiing last winter.", "skiing injury wrist"),
    ("My son collects vintage stamps.", "what does my son collect"),
    ("I am saving money to buy a house.", "saving for a house"),
    ("I volunteer at the food bank on Saturdays.", "volunteering"),
    ("I grow tomatoes and chillies on my balcony.", "gardening balcony tomatoes"),
    ("My team programs in Rust and PostgreSQL at work.", "programming languages at work"),
    ("I am afraid of flying and avoid planes.", "fear of flying"),
    ("I meditate for twenty minutes every morning.", "morning meditation"),
    ("My brother Tom is a firefighter in Denver.", "brother firefighter"),
    ("I read science fiction, mostly Ursula Le Guin.", "what do I like to read"),
    ("I commute by train, leaving at 7:40.", "how long is my commute"),
];

/// Deterministic distractors that share common words with the targets.
fn distractors() -> Vec<String> {
    let who = ["My neighbour", "My colleague", "My cousin", "My friend", "My aunt", "My uncle"];
    let did = [
        "lives in",
        "works at",
        "likes",
        "visited",
        "talks about",
        "moved to",
        "bought a flat in",
        "studies in",
    ];
    let what = [
        "Madrid",
        "the museum",
        "jazz music",
        "the mountains",
        "a bookshop",
        "Paris",
        "the office",
        "the gym",
        "a small village",
        "the seaside",
    ];
    let mut out = Vec::new();
    for (i, w) in who.iter().enumerate() {
        for (j, d) in did.iter().enumerate() {
            for (k, t) in what.iter().enumerate() {
                if (i + j * 3 + k * 7) % 3 == 0 {
                    out.push(format!("{w} {d} {t}."));
                }
            }
        }
    }
    out.extend(
        [
            "I had pasta for dinner yesterday.",
            "I went to the cinema on Friday.",
            "I am tired today.",
            "I watched a documentary about whales.",
            "I cleaned the kitchen this morning.",
            "I like rainy days.",
            "I bought new shoes.",
            "I am going to a wedding in June.",
        ]
        .map(str::to_owned),
    );
    out
}

#[tokio::test]
async fn expected_memories_rank_in_the_top_five() {
    for (db, personas, _dir) in both().await {
        let store = &personas.memories;
        let mut count = 0;
        for (i, content) in distractors().iter().enumerate() {
            let importance = (i % 10) as u8 + 1;
            let used = NOW - (i as i64 % 60) * DAY;
            store.remember(owner("ada", "grace"), &fact(content, importance), used).await.unwrap();
            count += 1;
        }
        for (i, (content, _)) in TARGETS.iter().enumerate() {
            let importance = (i % 7) as u8 + 2;
            store
                .remember(owner("ada", "grace"), &fact(content, importance), NOW - (i as i64) * DAY)
                .await
                .unwrap();
            count += 1;
        }
        assert!(count >= 200, "{db}: the corpus has {count} memories");
        let mut misses = Vec::new();
        for (content, query) in TARGETS {
            let found = store.recall("demo", "grace", &["ada"], &words(query), 5, NOW).await.unwrap();
            if !found.iter().any(|m| m.content == *content) {
                misses.push((query, found.iter().map(|m| m.content.clone()).collect::<Vec<_>>()));
            }
        }
        let hit_rate = 1.0 - misses.len() as f64 / TARGETS.len() as f64;
        assert!(hit_rate >= 0.9, "{db}: top-5 hit rate {hit_rate:.2}; misses: {misses:#?}");
        println!("{db}: top-5 hit rate {hit_rate:.3} over {} queries, {count} memories", TARGETS.len());
    }
}

#[tokio::test]
async fn equivalent_memories_are_stored_once_and_keep_the_higher_importance() {
    for (db, personas, _dir) in both().await {
        let store = &personas.memories;
        let first = store.remember(owner("ada", "grace"), &fact("I love jazz.", 4), NOW).await.unwrap();
        let again =
            store.remember(owner("ada", "grace"), &fact("i LOVE jazz!!", 8), NOW + DAY).await.unwrap();
        assert!(first.created && !again.created, "{db}");
        assert_eq!(first.id, again.id, "{db}");
        let all = store.export("demo", "grace").await.unwrap();
        assert_eq!(all.len(), 1, "{db}");
        assert_eq!((all[0].importance, all[0].last_used_at_ms), (8, NOW + DAY), "{db}");
        // The same words for another subject or persona are another memory.
        assert!(store.remember(owner("ada", "linus"), &fact("I love jazz.", 4), NOW).await.unwrap().created);
        assert!(
            store.remember(owner("grace", "grace"), &fact("I love jazz.", 4), NOW).await.unwrap().created
        );
    }
}

#[tokio::test]
async fn retention_drops_stale_then_least_valuable_memories() {
    for (db, personas, _dir) in both().await {
        let store = &personas.memories;
        let who = owner("ada", "grace");
        store.remember(who, &fact("stale but important", 10), NOW - 100 * DAY).await.unwrap();
        for (content, importance) in [("keep nine", 9), ("keep seven", 7), ("drop two", 2), ("keep five", 5)]
        {
            store.remember(who, &fact(content, importance), NOW).await.unwrap();
        }
        store.remember(owner("ada", "linus"), &fact("another subject", 1), NOW).await.unwrap();
        let deleted = store.prune(who, Retention { max_per_subject: 3, days: 90 }, NOW).await.unwrap();
        assert_eq!(deleted, 2, "{db}");
        let mut kept: Vec<String> =
            store.export("demo", "grace").await.unwrap().into_iter().map(|m| m.content).collect();
        kept.sort();
        assert_eq!(kept, ["keep five", "keep nine", "keep seven"], "{db}");
        assert_eq!(
            store.export("demo", "linus").await.unwrap().len(),
            1,
            "{db}: other subjects are untouched"
        );
        // The sweep applies the retention to every subject of the persona, written to or not.
        assert_eq!(store.expire("ada", 90, NOW + 91 * DAY).await.unwrap(), 4, "{db}");
        assert!(store.export("demo", "grace").await.unwrap().is_empty(), "{db}");
        assert!(store.export("demo", "linus").await.unwrap().is_empty(), "{db}");
    }
}

#[tokio::test]
async fn memories_never_cross_tenants_and_a_subject_can_be_forgotten() {
    for (db, personas, _dir) in both().await {
        let store = &personas.memories;
        store.remember(owner("ada", "grace"), &fact("My cat is called Turing.", 6), NOW).await.unwrap();
        store.remember(owner("ada", "grace"), &fact("I play chess on Sundays.", 5), NOW).await.unwrap();
        store.remember(owner("ada", "linus"), &fact("My cat is called Unix.", 6), NOW).await.unwrap();
        let acme = Owner { tenant: "acme", persona: "ada", subject: "grace" };
        store.remember(acme, &fact("My cat is called Hopper.", 6), NOW).await.unwrap();

        let found = store.recall("demo", "grace", &["ada"], &words("cat name"), 5, NOW).await.unwrap();
        assert_eq!(
            found.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
            ["My cat is called Turing."],
            "{db}"
        );
        let other = store.recall("acme", "grace", &["ada"], &words("cat name"), 5, NOW).await.unwrap();
        assert_eq!(other.len(), 1, "{db}");
        assert_eq!(other[0].content, "My cat is called Hopper.", "{db}");

        let exported = store.export("demo", "grace").await.unwrap();
        assert_eq!(exported.len(), 2, "{db}");
        assert!(exported.iter().all(|m| m.subject == "grace" && m.persona == "ada"), "{db}");
        assert_eq!(store.forget("demo", "grace", None, None).await.unwrap(), 2, "{db}");
        assert!(store.export("demo", "grace").await.unwrap().is_empty(), "{db}");
        assert_eq!(store.export("demo", "linus").await.unwrap().len(), 1, "{db}: other subjects stay");
        assert_eq!(store.export("acme", "grace").await.unwrap().len(), 1, "{db}: other tenants stay");
        let one = store.export("demo", "linus").await.unwrap()[0].id.clone();
        assert_eq!(store.forget("demo", "linus", Some("ada"), Some(&one)).await.unwrap(), 1, "{db}");
    }
}

#[tokio::test]
async fn sharing_policy_decides_whose_memories_are_recalled() {
    use switchboard_crds::config::PersonaConfig;
    let persona = |name: &str, scope: MemorySharingScope, listed: &[&str]| -> PersonaConfig {
        serde_json::from_value(serde_json::json!({
            "name": name, "namespace": "default", "tenant": "demo", "displayName": null, "systemPrompt": "x",
            "traits": [], "interests": [], "model": "demo-echo",
            "memory": {"sharing": {"scope": format!("{scope:?}"), "personas": listed}},
            "sharedWithTenants": [], "relationships": [], "rateLimits": {},
        }))
        .unwrap()
    };
    let all: std::collections::BTreeMap<String, std::sync::Arc<PersonaConfig>> =
        [persona("ada", MemorySharingScope::Private, &[]), persona("grace", MemorySharingScope::Tenant, &[])]
            .into_iter()
            .map(|p| (p.name.clone(), std::sync::Arc::new(p)))
            .collect();
    for (db, personas, _dir) in both().await {
        let store = &personas.memories;
        let ada =
            store.remember(owner("ada", "sam"), &fact("I keep bees in the garden.", 6), NOW).await.unwrap();
        let grace = store
            .remember(owner("grace", "sam"), &fact("My bees made honey this year.", 6), NOW)
            .await
            .unwrap();
        store.set_embedding(&ada.id, &axis(0, 1, 0.2, "mini")).await.unwrap();
        store.set_embedding(&grace.id, &axis(0, 1, 0.1, "mini")).await.unwrap();
        let recall = |reader: &str| {
            let readable = switchboard_gateway::persona::sharing::readable_by(&all, &all[reader]);
            let readable: Vec<String> = readable.into_iter().map(str::to_owned).collect();
            async move {
                let names: Vec<&str> = readable.iter().map(String::as_str).collect();
                // By words, and by meaning alone (a question with no word of either memory).
                let near = axis(0, 0, 0.0, "mini");
                let by_meaning = Query { text: "insects?", meaning: Some(&near), weights: &WEIGHTS };
                let mut owners = Vec::new();
                for query in [words("bees"), by_meaning] {
                    let found = store.recall("demo", "sam", &names, &query, 5, NOW).await.unwrap();
                    let mut these: Vec<String> = found.into_iter().map(|m| m.persona).collect();
                    these.sort();
                    owners.push(these);
                }
                assert_eq!(owners[0], owners[1], "meaning reads what words read, no more");
                owners.swap_remove(0)
            }
        };
        // grace shares with the tenant, so ada reads both; ada is private, so grace reads only hers.
        assert_eq!(recall("ada").await, ["ada", "grace"], "{db}");
        assert_eq!(recall("grace").await, ["grace"], "{db}");
    }
}

/// A unit vector along axis `i` of 4, tilted towards axis `j` by `tilt`.
fn axis(i: usize, j: usize, tilt: f32, model: &str) -> Meaning {
    let mut vector = vec![0.0f32; 4];
    vector[i] = 1.0;
    vector[j] += tilt;
    Meaning::new(model, vector).unwrap()
}

#[tokio::test]
async fn recall_by_meaning_finds_what_shares_no_word_and_stays_within_tenant_subject_and_model() {
    for (db, personas, _dir) in both().await {
        let store = &personas.memories;
        let mut ids = Vec::new();
        for (owner, content, vector) in [
            (owner("ada", "grace"), "I am allergic to peanuts.", axis(0, 1, 0.0, "mini")),
            (owner("ada", "grace"), "My uncle has a house in Lyon.", axis(1, 0, 0.0, "mini")),
            (owner("ada", "grace"), "I drive a red Toyota.", axis(2, 0, 0.0, "mini")),
            // The same fact in another tenant, another subject, and under another model: none is
            // recalled for demo's grace by mini's vectors.
            (
                Owner { tenant: "acme", persona: "ada", subject: "grace" },
                "I am allergic to shellfish.",
                axis(0, 1, 0.0, "mini"),
            ),
            (owner("ada", "linus"), "I am allergic to pollen.", axis(0, 1, 0.0, "mini")),
            (owner("ada", "grace"), "Bees sting me badly.", axis(0, 1, 0.0, "other")),
        ] {
            let stored = store.remember(owner, &fact(content, 5), NOW).await.unwrap();
            store.set_embedding(&stored.id, &vector).await.unwrap();
            ids.push(stored.id);
        }
        // "What food should I avoid?" shares no word with the allergy: by words nothing is found,
        // by meaning (a vector near the allergy's) it comes first.
        let question = "What food should I avoid?";
        let found = store.recall("demo", "grace", &["ada"], &words(question), 5, NOW).await.unwrap();
        assert!(found.is_empty(), "{db}: {found:?}");
        let near = axis(0, 1, 0.3, "mini");
        let query = Query { text: question, meaning: Some(&near), weights: &WEIGHTS };
        let found = store.recall("demo", "grace", &["ada"], &query, 5, NOW).await.unwrap();
        let contents: Vec<&str> = found.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(contents[0], "I am allergic to peanuts.", "{db}");
        assert_eq!(contents[1], "My uncle has a house in Lyon.", "{db}: the next nearest");
        assert!(
            !contents.iter().any(|c| c.contains("shellfish") || c.contains("pollen")),
            "{db}: {contents:?}"
        );
        assert!(!contents.contains(&"Bees sting me badly."), "{db}: another model's vector is not compared");
        assert!(found[0].score > found[1].score, "{db}");

        // Words still count: where meaning tells nothing apart, the words decide.
        let neutral = axis(3, 3, 0.0, "mini");
        let query = Query { text: "red Toyota", meaning: Some(&neutral), weights: &WEIGHTS };
        let found = store.recall("demo", "grace", &["ada"], &query, 1, NOW).await.unwrap();
        assert_eq!(found[0].content, "I drive a red Toyota.", "{db}");

        // What a change of model leaves to re-embed: every memory of the persona not by "mini".
        let waiting = store.unembedded(Scope { persona: "ada", subject: None }, "mini", 10).await.unwrap();
        assert_eq!(
            waiting.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
            ["Bees sting me badly."],
            "{db}"
        );
        assert_eq!(store.count_unembedded("ada", "next").await.unwrap(), 6, "{db}");
        let scope = Scope { persona: "ada", subject: Some(("acme", "grace")) };
        let theirs = store.unembedded(scope, "next", 10).await.unwrap();
        assert_eq!(theirs.len(), 1, "{db}");
        assert_eq!(theirs[0].tenant, "acme", "{db}");
        store.set_embedding(&ids[5], &axis(3, 0, 0.0, "mini")).await.unwrap();
        assert_eq!(store.count_unembedded("ada", "mini").await.unwrap(), 0, "{db}");
    }
}

#[tokio::test]
async fn a_newer_memory_of_the_same_slot_supersedes_the_old_one_which_stays_as_history() {
    let home = |content: &str| NewMemory { slot: Some("home".into()), ..fact(content, 6) };
    for (db, personas, _dir) in both().await {
        let store = &personas.memories;
        let leeds =
            store.remember(owner("ada", "grace"), &home("I live in Leeds."), NOW - 10 * DAY).await.unwrap();
        assert_eq!(leeds.superseded, 0, "{db}");
        store.set_embedding(&leeds.id, &axis(0, 0, 0.0, "mini")).await.unwrap();
        // Another subject's, another tenant's and another persona's homes are theirs.
        for other in [
            owner("ada", "linus"),
            owner("bob", "grace"),
            Owner { tenant: "acme", persona: "ada", subject: "grace" },
        ] {
            store.remember(other, &home("I live in Oslo."), NOW - 5 * DAY).await.unwrap();
        }
        let york = store.remember(owner("ada", "grace"), &home("I moved to York."), NOW).await.unwrap();
        assert_eq!(york.superseded, 1, "{db}");
        store.set_embedding(&york.id, &axis(0, 1, 0.1, "mini")).await.unwrap();

        // Recall, by words or by meaning, returns what is true now.
        let near = axis(0, 0, 0.0, "mini");
        for query in
            [words("live Leeds York moved"), Query { text: "home", meaning: Some(&near), weights: &WEIGHTS }]
        {
            let found = store.recall("demo", "grace", &["ada"], &query, 5, NOW).await.unwrap();
            let contents: Vec<&str> = found.iter().map(|m| m.content.as_str()).collect();
            assert_eq!(contents, ["I moved to York."], "{db}");
        }
        // The export keeps the history, with when and by which memory it was superseded.
        let exported = store.export("demo", "grace").await.unwrap();
        let old = exported.iter().find(|m| m.content == "I live in Leeds.").unwrap();
        assert_eq!(
            (old.superseded_at_ms, old.superseded_by.as_deref()),
            (Some(NOW), Some(york.id.as_str())),
            "{db}"
        );
        assert_eq!(old.slot.as_deref(), Some("home"), "{db}");
        assert!(
            store
                .unembedded(Scope { persona: "ada", subject: None }, "next", 10)
                .await
                .unwrap()
                .iter()
                .all(|m| m.id != leeds.id),
            "{db}: history is not re-embedded"
        );
        assert_eq!(store.export("demo", "linus").await.unwrap()[0].superseded_at_ms, None, "{db}");
        assert_eq!(store.export("acme", "grace").await.unwrap()[0].superseded_at_ms, None, "{db}");

        // Saying the old thing again makes it current again, and supersedes the newer one.
        let back = store.remember(owner("ada", "grace"), &home("I live in Leeds!"), NOW + DAY).await.unwrap();
        assert_eq!((back.id.as_str(), back.created, back.superseded), (leeds.id.as_str(), false, 1), "{db}");
        let found = store
            .recall("demo", "grace", &["ada"], &words("live Leeds York moved"), 5, NOW + DAY)
            .await
            .unwrap();
        assert_eq!(
            found.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
            ["I live in Leeds."],
            "{db}"
        );
    }
}

#[tokio::test]
async fn moods_and_relationships_change_with_interactions_and_decay_with_time() {
    let start = Relationship { persona: "grace".into(), affinity: 20, trust: 60 };
    let warm = Quality::of_text("Thank you, that was really helpful and wonderful!");
    let hostile = Quality::of_text("This is awful and useless, I hate it.");
    assert!(warm.valence > 0.5 && hostile.valence < -0.5, "{warm:?} {hostile:?}");
    for (db, personas, _dir) in both().await {
        let feelings = &personas.feelings;
        let neutral = feelings.state("demo", "ada", NOW).await.unwrap();
        assert_eq!((neutral.interactions, neutral.mood.valence), (0, 0.0), "{db}");

        let mut now = NOW;
        for _ in 0..3 {
            now += 60_000;
            feelings.record("demo", "ada", warm, now).await.unwrap();
        }
        let happy = feelings.state("demo", "ada", now).await.unwrap();
        assert!(happy.mood.valence > 0.3, "{db}: {happy:?}");
        assert_eq!((happy.interactions, happy.last_interaction_ms), (3, Some(now)), "{db}");
        assert!((happy.average_quality - warm.valence).abs() < 1e-9, "{db}");
        // Six hours alone halve the distance to neutral; a week alone leaves almost nothing.
        let later = feelings.state("demo", "ada", now + MOOD_HALF_LIFE_MS).await.unwrap();
        assert!((later.mood.valence - happy.mood.valence / 2.0).abs() < 1e-6, "{db}: {later:?}");
        assert!(
            feelings.state("demo", "ada", now + 7 * DAY).await.unwrap().mood.valence.abs() < 0.01,
            "{db}"
        );
        let upset = feelings.record("demo", "ada", hostile, now + 60_000).await.unwrap();
        assert!(upset.mood.valence < happy.mood.valence, "{db}");

        let initial = feelings.bond("demo", "ada", "grace", Some(&start), NOW).await.unwrap();
        assert_eq!((initial.affinity, initial.trust, initial.interactions), (20.0, 60.0, 0), "{db}");
        let mut bond = initial;
        for minute in 1..=5 {
            bond = feelings
                .interact("demo", "ada", "grace", Some(&start), warm, NOW + minute * 60_000)
                .await
                .unwrap();
        }
        assert!(bond.affinity > 20.0 && bond.trust > 60.0 && bond.familiarity > 0.0, "{db}: {bond:?}");
        assert_eq!((bond.interactions, bond.last_interaction_ms), (5, Some(NOW + 5 * 60_000)), "{db}");
        // grace's side of the bond is her own, untouched.
        assert_eq!(feelings.bond("demo", "grace", "ada", None, NOW).await.unwrap().interactions, 0, "{db}");
        // A month alone brings affinity halfway back to where the spec started it.
        let month = feelings
            .bond("demo", "ada", "grace", Some(&start), bond.at_ms + BOND_HALF_LIFE_MS)
            .await
            .unwrap();
        let expected = 20.0 + (bond.affinity - 20.0) / 2.0;
        assert!((month.affinity - expected).abs() < 1e-6, "{db}: {month:?} vs {expected}");
        assert_eq!(month.interactions, 5, "{db}");
    }
}
