"""Curated words for writing about a class the way people do.

Per class: ``terms`` (synonyms, hyponyms and the name in other words), ``hypernyms``
(what it is a kind of), ``looks`` (short descriptions of what it looks like) and
``contexts`` (what it is doing, where). Classes without an entry are written about with
their name, the generic hypernym ``thing`` and :data:`GENERIC_CONTEXTS`.

No lexical resource with data that installs offline fits here: WordNet readers on PyPI
(``wn``, nltk) download their data at run time. The lists are therefore shipped with the
plugin; a third party replaces the bridge by registering another ``label -> text`` one.
The evaluation prompts in ``bench/prompts/animals.tsv`` are kept out of these lists
(a test checks it), so scores on them measure generalisation, not recall.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    terms: tuple[str, ...] = ()
    hypernyms: tuple[str, ...] = ()
    looks: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ()


_ANIMAL = ("animal", "mammal", "creature", "beast")

LEXICON: dict[str, Entry] = {
    "bear": Entry(
        terms=("brown bear", "black bear", "bear cub", "wild bear", "cave bear", "sun bear", "spectacled bear"),
        hypernyms=("carnivore", "predator", "wild animal") + _ANIMAL,
        looks=("a heavy animal with thick fur and strong claws", "a big round-eared mammal on four thick legs",
               "a powerful furry animal of the forest", "a stocky animal with a big head and small eyes"),
        contexts=("fishing in a stream", "in the woods", "walking on all fours", "eating berries",
                  "near a waterfall", "rubbing its back on a tree", "in the snow", "standing upright"),
    ),
    "bird": Entry(
        terms=("blackbird", "seagull", "parrot", "eagle", "dove", "owl", "hawk", "starling", "wren", "budgie"),
        hypernyms=("flying animal", "animal", "creature", "vertebrate"),
        looks=("a small animal with feathers and a beak", "a winged creature with a pointed beak",
               "a feathered animal with two legs and wings", "a creature that flies with feathered wings"),
        contexts=("in flight", "on a wire", "in a tree", "in the sky", "on a rooftop", "landing on a branch",
                  "near the water", "gliding on the wind"),
    ),
    "cat": Entry(
        terms=("kitten", "house cat", "tomcat", "tortoiseshell cat", "black cat", "persian cat", "alley cat"),
        hypernyms=("pet", "domestic animal") + _ANIMAL,
        looks=("a small furry pet with pointed ears and whiskers", "a slender animal with soft fur and a long tail",
               "a pet with sharp claws and green eyes", "a small predator with a long tail and upright ears"),
        contexts=("on a rug", "in the garden", "on a chair", "looking out of the window", "washing its paws",
                  "on a rooftop", "hunting in the grass", "napping"),
    ),
    "cow": Entry(
        terms=("dairy cow", "milk cow", "bull", "cattle beast", "jersey cow", "highland cow", "angus"),
        hypernyms=("farm animal", "livestock", "ruminant") + _ANIMAL,
        looks=("a large farm animal with hooves and horns", "a big heavy animal with a long tail and a wide nose",
               "a spotted farm animal with a big body", "a grazing animal with udders and short horns"),
        contexts=("in a pasture", "on a farm", "eating grass", "in a field", "by the barn", "in the sun",
                  "near a gate", "in a herd"),
    ),
    "dog": Entry(
        terms=("hound dog", "collie", "retriever", "bulldog", "sheepdog", "spaniel", "husky", "shepherd dog",
               "greyhound"),
        hypernyms=("pet", "domestic animal") + _ANIMAL,
        looks=("a four-legged pet with floppy ears and a tail", "a furry pet with a wet nose",
               "a loyal pet with four legs and a wagging tail", "a medium-sized animal with a snout and paws"),
        contexts=("in the yard", "on a walk", "with a ball", "by the fire", "on the grass", "jumping",
                  "running through a field", "lying on the floor"),
    ),
    "elephant": Entry(
        terms=("african elephant", "baby elephant", "bull elephant", "elephant calf", "circus elephant",
               "forest elephant"),
        hypernyms=("wild animal", "herbivore") + _ANIMAL,
        looks=("a huge animal with a long trunk and tusks", "an enormous grey animal with big ears",
               "a giant wrinkled animal with ivory tusks", "a very large animal with thick legs and a trunk"),
        contexts=("on the savanna", "in a herd", "near a river", "in the jungle", "in the dust", "at the zoo",
                  "flapping its ears", "walking slowly"),
    ),
    "giraffe": Entry(
        terms=("baby giraffe", "giraffe calf", "tall giraffe", "wild giraffe", "rothschild giraffe"),
        hypernyms=("wild animal", "herbivore", "ruminant") + _ANIMAL,
        looks=("an animal with a very long neck and spots", "a tall animal with long legs and a long neck",
               "a spotted animal with a tiny head on a long neck", "an extremely tall african animal"),
        contexts=("on the savanna", "near a tree", "in the wild", "eating from a treetop", "in africa",
                  "in a safari park", "on the plains", "walking slowly"),
    ),
    "horse": Entry(
        terms=("racehorse", "draft horse", "wild horse", "arabian horse", "riding horse", "shetland pony",
               "palomino", "gelding"),
        hypernyms=("farm animal", "domestic animal") + _ANIMAL,
        looks=("a large animal with hooves, a mane and a long tail", "a strong animal with a long face and a mane",
               "a tall animal with slender legs and a flowing tail", "a four-legged animal people ride"),
        contexts=("in a field", "on a farm", "trotting", "in a race", "by a fence", "on a trail",
                  "in the countryside", "grazing"),
    ),
    "sheep": Entry(
        terms=("woolly sheep", "black sheep", "mountain sheep", "shorn sheep", "farm sheep", "bighorn sheep"),
        hypernyms=("farm animal", "livestock", "ruminant") + _ANIMAL,
        looks=("a farm animal covered in thick wool", "a small animal with a woolly coat and a narrow face",
               "a round woolly animal on thin legs", "a grazing animal with a fleece"),
        contexts=("in a meadow", "on a farm", "in a flock", "on a hill", "eating grass", "in a pen",
                  "in the countryside", "by a fence"),
    ),
    "zebra": Entry(
        terms=("wild zebra", "baby zebra", "mountain zebra", "cape zebra", "african zebra"),
        hypernyms=("wild animal", "herbivore") + _ANIMAL,
        looks=("an animal covered in black and white stripes", "a horse-like animal with a striped coat",
               "a striped wild animal with a short mane", "a black-and-white animal shaped like a small horse"),
        contexts=("on the savanna", "in a herd", "near a river", "in africa", "in the wild", "at the zoo",
                  "on the plains", "in the grass"),
    ),
}

GENERIC_CONTEXTS: tuple[str, ...] = (
    "in the picture", "on a sunny day", "at night", "seen from the side", "up close", "in the distance",
    "in the middle of the frame", "outdoors", "on a plain background", "in the morning",
)

def entry_for(name: str) -> Entry:
    """The curated entry of a class name (case-insensitive), or an empty one."""
    return LEXICON.get(name.lower(), Entry())
