"""Generates the persona memory benchmark's data, deterministically: the retrieval set
(bench/memory/dataset.json) and a long multi-session conversation (bench/memory/dialogue.json).

    python3 bench/memory/generate.py [--subjects 25] [--seed 7]

Each subject gets one memory per topic below (50 topics, values drawn per subject), and each
memory one question about it, written to share no word or stem with it: paraphrases, synonyms
and indirect questions ("What triggers a bad reaction in my body?" for "I am allergic to
penicillin."). The generator checks that claim with a crude stemmer and prints the share of
questions that pass it; the set records it. `filler()` makes the 10,000 memories per subject
that the latency run recalls among.

The conversation (`dialogue()`): ten sessions of 32 user turns (320 in all) with one person, who
mentions 40 facts about themselves in the first four sessions among small talk, a few more later,
and in later sessions changes five of them (moves, a new job, a new car...). Its 40 questions
ask about the first four sessions; each names the turn that holds its answer (the latest one for
a fact that changed, and the turn it replaced, which must no longer be recalled as current).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

# (facts, questions, values): a fact template, with {v} drawn from the values, and questions
# that never name the value or a word of the fact.
TOPICS = [
    (["I am allergic to {v}."], ["What triggers a bad reaction in my body?", "What could give me hives or swelling?"],
     ["peanuts", "shellfish", "penicillin", "cats", "pollen", "latex", "gluten", "eggs", "bee stings", "dust mites"]),
    (["I live in {v}."], ["Where is my home?", "Which town do I reside in?"],
     ["Lisbon", "Leeds", "Osaka", "Denver", "Krakow", "Nairobi", "Montreal", "Perth", "Bilbao", "Tallinn"]),
    (["My uncle has a house in {v}."], ["Where does my family own property?", "Which relative's place could I stay at?"],
     ["Lyon", "Porto", "Bergen", "Cork", "Graz", "Turin", "Ghent", "Split", "Malmo", "Brno"]),
    (["My dog is called {v}."], ["What is the name of my puppy?", "How do I address my canine companion?"],
     ["Rex", "Biscuit", "Luna", "Max", "Pepper", "Bruno", "Nala", "Ziggy", "Olive", "Scout"]),
    (["I have a cat named {v}."], ["What is my kitten called?", "Who is the feline that shares my flat?"],
     ["Turing", "Misty", "Tigger", "Saffron", "Mochi", "Felix", "Jasper", "Pixel", "Nutmeg", "Cleo"]),
    (["I work as a {v}."], ["What is my profession?", "How do I earn money?"],
     ["nurse", "plumber", "teacher", "pilot", "dentist", "carpenter", "lawyer", "chef", "librarian", "firefighter"]),
    (["My car is a {v}."], ["What vehicle do I own?", "Which automobile sits in my driveway?"],
     ["red Toyota", "blue Volvo", "silver Skoda", "white Tesla", "green Mini", "black Audi", "grey Honda",
      "yellow Fiat", "brown Subaru", "orange Kia"]),
    (["My favourite dish is {v}."], ["What meal do I enjoy most?", "Which recipe would delight me at dinner?"],
     ["lasagna", "ramen", "paella", "biryani", "moussaka", "goulash", "pho", "tacos", "risotto", "falafel"]),
    (["Every morning I drink {v}."], ["Which beverage starts my day?", "What do I sip at breakfast?"],
     ["green tea", "black coffee", "orange juice", "hot chocolate", "matcha", "oat latte", "espresso", "chai",
      "mint infusion", "kombucha"]),
    (["I play {v} every weekend."], ["How do I exercise on Saturdays?", "Which sport keeps me active?"],
     ["tennis", "badminton", "squash", "volleyball", "basketball", "golf", "hockey", "cricket", "rugby", "handball"]),
    (["I play the {v} in an orchestra."], ["What music do I make?", "Which instrument do I perform on?"],
     ["cello", "violin", "flute", "oboe", "trumpet", "clarinet", "harp", "bassoon", "viola", "trombone"]),
    (["I am learning {v} at evening classes."], ["Which foreign tongue am I studying?", "What language do I practise after work?"],
     ["Japanese", "Portuguese", "Arabic", "Korean", "Swahili", "Finnish", "Greek", "Hindi", "Polish", "Turkish"]),
    (["My birthday is in {v}."], ["When was I born?", "In which month should you congratulate me?"],
     ["January", "March", "April", "May", "June", "July", "August", "October", "November", "December"]),
    (["My sister {v} is a dentist."], ["What does my sibling do for a living?", "Who in my family fixes teeth?"],
     ["Maria", "Priya", "Sofia", "Hannah", "Yuki", "Chloe", "Amara", "Ines", "Freya", "Noor"]),
    (["My wife {v} teaches chemistry."], ["Who am I married to?", "What subject does my spouse lecture?"],
     ["Ana", "Elena", "Grace", "Fatima", "Julia", "Mei", "Rosa", "Leila", "Clara", "Zoe"]),
    (["I have {v} daughters."], ["How many kids do I have?", "What size is my family?"],
     ["two", "three", "four", "five"]),
    (["I am {v}."], ["Do I eat meat?", "What diet do I follow?"],
     ["vegetarian", "vegan", "pescatarian"]),
    (["I am afraid of {v}."], ["What scares me?", "Which thing gives me a phobia?"],
     ["spiders", "heights", "snakes", "deep water", "thunderstorms", "clowns", "needles", "flying", "the dark",
      "crowds"]),
    (["I collect {v}."], ["What do I gather as a pastime?", "Which hobby fills my shelves?"],
     ["vintage stamps", "old coins", "vinyl records", "comic books", "seashells", "postcards", "model trains",
      "fountain pens", "antique maps", "board games"]),
    (["My favourite author is {v}."], ["Which writer do I love reading?", "Whose novels do I admire?"],
     ["Tolstoy", "Austen", "Murakami", "Achebe", "Borges", "Woolf", "Dickens", "Calvino", "Morrison", "Orwell"]),
    (["I love watching {v} films."], ["What kind of movies do I enjoy?", "Which cinema genre do I prefer?"],
     ["horror", "science fiction", "romantic", "documentary", "western", "animated", "noir", "war", "musical",
      "martial arts"]),
    (["Last summer I visited {v}."], ["Where did I go on holiday recently?", "Which country was my latest trip to?"],
     ["Peru", "Vietnam", "Morocco", "Iceland", "Chile", "Georgia", "Jordan", "Norway", "Mexico", "Laos"]),
    (["I dream of seeing {v} one day."], ["Which place is on my bucket list?", "Where do I hope to travel someday?"],
     ["Patagonia", "the Northern Lights", "Machu Picchu", "Antarctica", "the Great Barrier Reef", "Petra",
      "Kyoto in spring", "the Serengeti", "Bhutan", "the Galapagos"]),
    (["I {v} to the office."], ["How do I get to work?", "What is my commute like?"],
     ["cycle", "walk", "take the tram", "drive", "take the train", "ride a scooter", "take the bus", "carpool",
      "run", "take the ferry"]),
    (["I have {v}."], ["What chronic condition do I manage?", "Which illness should my doctor know about?"],
     ["type 2 diabetes", "asthma", "migraines", "high blood pressure", "arthritis", "eczema", "coeliac disease",
      "sleep apnoea", "hypothyroidism", "tinnitus"]),
    (["I usually go to bed at {v}."], ["When do I fall asleep?", "What time do I turn in at night?"],
     ["midnight", "ten", "eleven", "half past nine", "one in the morning", "two"]),
    (["I studied {v} at university."], ["What was my degree in?", "Which subject did I major in?"],
     ["physics", "history", "economics", "biology", "architecture", "philosophy", "mathematics", "law",
      "linguistics", "geology"]),
    (["I grew up in {v}."], ["Where did I spend my childhood?", "What is my hometown?"],
     ["Manila", "Dublin", "Accra", "Quito", "Hanoi", "Riga", "Tunis", "Lima", "Seoul", "Sofia"]),
    (["My favourite colour is {v}."], ["Which shade do I like best?", "What hue would I pick for my room?"],
     ["green", "blue", "crimson", "yellow", "purple", "teal", "orange", "black", "white", "pink"]),
    (["{v} is my favourite season."], ["Which time of year do I like most?", "When in the calendar am I happiest?"],
     ["Autumn", "Winter", "Spring", "Summer"]),
    (["I listen to {v} all day."], ["What songs do I enjoy?", "Which music plays in my headphones?"],
     ["jazz", "reggae", "opera", "punk", "techno", "bluegrass", "salsa", "hip hop", "classical", "soul"]),
    (["I support {v} football club."], ["Which team am I a fan of?", "Whose matches do I cheer for?"],
     ["Arsenal", "Benfica", "Celtic", "Ajax", "Napoli", "Boca Juniors", "Galatasaray", "Porto", "Lyon", "Everton"]),
    (["I grow {v} in my garden."], ["What vegetables do I cultivate at home?", "Which plants do I harvest each year?"],
     ["tomatoes", "courgettes", "potatoes", "pumpkins", "beans", "carrots", "peppers", "lettuce", "onions", "leeks"]),
    (["I bake {v} on Sundays."], ["What do I make in the kitchen each week?", "Which treat comes out of my oven?"],
     ["sourdough bread", "croissants", "banana bread", "bagels", "apple pie", "cinnamon rolls", "focaccia",
      "scones", "brownies", "pretzels"]),
    (["I code in {v}."], ["Which programming language do I write?", "What do I build software with?"],
     ["Rust", "Python", "Haskell", "Go", "Kotlin", "Elixir", "Swift", "Ruby", "Scala", "Julia"]),
    (["I take my coffee with {v}."], ["How do I like my morning brew?", "What goes into my espresso?"],
     ["oat milk", "two sugars", "cream", "honey", "cinnamon", "almond milk", "nothing at all", "whole milk"]),
    (["My shoe size is {v}."], ["How big are my feet?", "Which boots would fit me?"],
     ["38", "39", "40", "41", "42", "43", "44", "45"]),
    (["I am {v} centimetres tall."], ["What is my height?", "How high do I stand?"],
     ["160", "165", "170", "175", "180", "185", "190"]),
    (["Our wedding anniversary is in {v}."], ["When did I get married?", "Which month do my spouse and I celebrate?"],
     ["June", "September", "February", "May", "August", "December"]),
    (["I volunteer at the {v}."], ["Where do I help out for free?", "Which charity work do I do?"],
     ["animal shelter", "food bank", "hospice", "library", "soup kitchen", "refugee centre", "youth club",
      "community garden", "museum", "hospital"]),
    (["My neighbour {v} is a retired pilot."], ["Who lives next door?", "Which person lives beside my flat?"],
     ["Tom", "Ahmed", "Olga", "Pedro", "Ingrid", "Kenji", "Margaret", "Samuel", "Lucia", "Viktor"]),
    (["My best friend is {v} from school."], ["Who is my closest pal?", "Which buddy have I known the longest?"],
     ["Lena", "Omar", "Jake", "Aisha", "Bruno", "Nina", "Ravi", "Tess", "Hugo", "Maya"]),
    (["I cannot stand {v}."], ["What annoys me?", "Which habit drives me mad?"],
     ["loud chewing", "people who are late", "slow walkers", "cold coffee", "messy desks", "traffic jams",
      "small talk", "wet socks", "buzzing flies", "queues"]),
    (["I am running a marathon in {v} next spring."], ["Which race am I training for?", "Which city hosts my upcoming race?"],
     ["Berlin", "Boston", "Tokyo", "London", "Chicago", "Paris", "Rome", "Vienna", "Athens", "Sydney"]),
    (["My flat is on the {v} floor."], ["How high up is my apartment?", "Which storey do I reside on?"],
     ["fifth", "second", "ninth", "top", "ground", "third", "eleventh", "fourth"]),
    (["My {v} broke last week."], ["Which device of mine stopped working?", "What gadget needs repair?"],
     ["laptop", "phone", "washing machine", "fridge", "bicycle", "television", "kettle", "printer", "camera",
      "headphones"]),
    (["I meditate for {v} minutes every morning."], ["How long is my daily mindfulness practice?",
                                                   "What calms me down before work?"],
     ["ten", "fifteen", "twenty", "thirty", "five", "forty"]),
    (["My grandmother was born in {v}."], ["Where do my ancestors come from?", "What is my family's origin?"],
     ["Sicily", "Galicia", "Bavaria", "Punjab", "Anatolia", "Silesia", "Bengal", "Andalusia", "Crete", "Moravia"]),
    (["I keep {v} in an aquarium."], ["What fish do I look after?", "Which creatures swim in my tank?"],
     ["guppies", "goldfish", "neon tetras", "angelfish", "clownfish", "bettas", "catfish", "discus"]),
    (["My salary goes mostly into {v}."], ["Where does my money go?", "What do I spend my earnings on?"],
     ["rent", "my mortgage", "travel", "savings", "my kids' school", "restaurants", "books", "gadgets"]),
]

STOP = set("""a an the i my me am is are was be to of in on at for and or do does did what which who whom whose
where when how why that this with from by as it its into out up down over under again each every one day
should would could can will you your our we us they them their have has had not no""".split())


def stems(text: str) -> set[str]:
    """Crude stems: lowercase words less stop words, without common English suffixes."""
    out = set()
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in STOP:
            continue
        for suffix in ("ies", "ing", "ed", "es", "s", "ly", "er"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                if word[-1] == word[-2] and word[-1] not in "lsz":
                    word = word[:-1]  # running -> run
                break
        out.add(word[:6])
    return out


def generate(subjects: int, seed: int) -> dict:
    rng = random.Random(seed)
    names = [f"subject-{i:02d}" for i in range(subjects)]
    memories, queries = [], []
    for subject in names:
        for topic, (facts, questions, values) in enumerate(TOPICS):
            fact = rng.choice(facts).format(v=rng.choice(values))
            fact = fact[0].upper() + fact[1:]
            memories.append({"subject": subject, "topic": topic, "content": fact})
            queries.append({"subject": subject, "topic": topic, "question": rng.choice(questions), "target": fact})
    disjoint = sum(1 for q in queries if not stems(q["question"]) & stems(q["target"]))
    return {
        "about": "Persona memory retrieval set: one memory per topic per subject, one question each "
                 "(bench/memory/generate.py).",
        "seed": seed,
        "subjects": names,
        "memories": memories,
        "queries": queries,
        "questions_sharing_no_stem": round(disjoint / len(queries), 4),
    }


def filler(count: int, seed: int) -> list[str]:
    """`count` distinct everyday memories of one subject, for the latency run."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out = []
    while len(out) < count:
        facts, _, values = rng.choice(TOPICS)
        text = f"On day {rng.randint(1, 100000)} {rng.choice(facts).format(v=rng.choice(values))[0].lower()}" \
               f"{rng.choice(facts).format(v=rng.choice(values))[1:]}"
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


# Small talk: statements and questions that say nothing lasting about the speaker.
SMALL_TALK = [
    "Thanks, that helps a lot.", "Ha, good one.", "Can you tell me a joke?", "What is the capital of Peru?",
    "That sounds great.", "Interesting, go on.", "Hmm, let me think about it.", "How does a rainbow form?",
    "Sorry, I got distracted.", "What should I read next?", "Okay, makes sense.", "Could you explain that again?",
    "Nice, thank you!", "What time zone is Tokyo in?", "That's a relief.", "Why is the sky blue?",
    "Fair enough.", "Can you summarise that for me?", "Wow, really?", "Good morning!", "Any tips for focus?",
    "That was a long day.", "Tell me something surprising.", "Right, noted.", "How do magnets work?",
    "Not sure I agree.", "Could you be shorter?", "Great, let us continue.", "What is a haiku?",
    "Brilliant.", "Is it going to rain in April?", "See you tomorrow.",
]
# Facts that change later, by topic index (the topics' facts name a slot: home, job, car...),
# with the later statement's template.
CHANGES = {1: "I moved to {v}.", 5: "I work as a {v} now.", 6: "My car is a {v}.", 7: "My favourite dish is {v}.",
           28: "My favourite colour is {v}."}


def dialogue(seed: int) -> dict:
    """The long conversation: sessions of user turns with ids `S<session>:T<turn>`, and questions."""
    rng = random.Random(seed)
    early = list(range(40))
    late = list(range(40, len(TOPICS)))
    facts: dict[int, tuple[str, str]] = {}  # topic -> (turn id, text) of its current statement
    replaced: dict[int, str] = {}  # topic -> the turn id its first statement had
    sessions = []
    for session in range(10):
        said = []
        if session < 4:
            for topic in early[session * 10:(session + 1) * 10]:
                template, _, values = TOPICS[topic]
                said.append((topic, rng.choice(template).format(v=rng.choice(values))))
        elif session in (5, 7):
            for topic in late[(session - 5) * 5:(session - 5) * 5 + 5]:
                template, _, values = TOPICS[topic]
                said.append((topic, rng.choice(template).format(v=rng.choice(values))))
        elif session in (8, 9):
            for topic in list(CHANGES)[(session - 8) * 3:(session - 8) * 3 + 3]:
                old = facts[topic][1]
                value = rng.choice([v for v in TOPICS[topic][2] if v not in old])
                said.append((topic, CHANGES[topic].format(v=value)))
        turns = [(None, text) for text in rng.sample(SMALL_TALK, 32 - len(said))] + said
        rng.shuffle(turns)
        listed = []
        for index, (topic, text) in enumerate(turns):
            text = text[0].upper() + text[1:]
            turn = f"S{session + 1}:T{index + 1}"
            if topic is not None:
                if topic in facts:
                    replaced[topic] = facts[topic][0]
                facts[topic] = (turn, text)
            listed.append({"id": turn, "text": text})
        sessions.append(listed)
    questions = []
    for topic in early:
        turn, text = facts[topic]
        question = {"question": rng.choice(TOPICS[topic][1]), "evidence": turn, "answer": text}
        if topic in replaced:
            question["outdated"] = replaced[topic]
        questions.append(question)
    return {"about": "A ten-session conversation of 320 user turns with questions about its first four sessions "
                     "(bench/memory/generate.py).", "seed": seed, "sessions": sessions, "questions": questions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=25)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("dataset.json"))
    args = parser.parse_args()
    data = generate(args.subjects, args.seed)
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{len(data['memories'])} memories, {len(data['queries'])} questions over {args.subjects} subjects; "
          f"{data['questions_sharing_no_stem']:.1%} share no stem with their memory -> {args.out}")
    talk = dialogue(args.seed)
    path = args.out.with_name("dialogue.json")
    path.write_text(json.dumps(talk, indent=1) + "\n")
    turns = sum(len(s) for s in talk["sessions"])
    print(f"{turns} turns in {len(talk['sessions'])} sessions, {len(talk['questions'])} questions -> {path}")


if __name__ == "__main__":
    main()
