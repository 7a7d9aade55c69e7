#!/usr/bin/env python3
"""Builds the pretraining corpus of the built-in backbone, offline, from Debian's speech engines.

    python3 scripts/make_pretrain_corpus.py [--out DIR] [--renditions 24] [--jobs 2]

Writes (through a temporary folder renamed at the end, so a corpus is never half-written):

    DIR/train/<label>/<id>.wav   pretraining clips, 16 kHz mono 16-bit, one folder per label
    DIR/eval/<word>/<id>.wav     held-out words spoken by held-out voices (few-shot benchmark)
    DIR/words.txt                the pretraining vocabulary, one label per line
    DIR/heldout_words.txt        words kept out of pretraining
    DIR/voices.txt               voices used for pretraining
    DIR/heldout_voices.txt       voices kept out of pretraining
    DIR/manifest.json            sources, voices, words, counts, settings and the command

Speakers: espeak-ng (English accents and other languages reading English, each with its voice
variants), flite's built-in voices, festival's installed voices and, with `--mbrola-renditions`,
the MBROLA voices espeak-ng drives (Debian contrib `mbrola-*`: diphones of real speakers, the most
natural timbres of the lot). Each clip gets its own speed,
pitch, level, room reverberation, background noise (pink/white/brown or a desktop sound) and
onset. Non-speech sounds from the installed sound themes are an extra vocabulary, and a
`_noise_` class holds background without speech. Digits are spelt as words by the engines and
stored under the labels "0"…"9", the labels of the FSDD recordings that `native-train
pretrain-demo --data` adds (the held-out FSDD speakers theo and yweweler are never read here).

A missing engine or voice is skipped with a one-line warning naming it; the corpus needs at
least one working engine. Needs sox (with its ogg format for the sound themes).
"""

import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE_RATE = 16000
# Longest clip (s): the backbone reads 128 frames of 10 ms.
MAX_SECONDS = 1.28

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

# The pretraining vocabulary: commands, numbers and common short words.
WORDS = """
yes no up down left right on off stop go start pause play next back forward open close
begin end again cancel enter exit help home menu select save delete undo redo copy paste
send call answer mute louder quieter faster slower skip repeat wait ready done okay sure
maybe please thanks hello goodbye morning evening night today tomorrow yesterday week month
year minute hour second first last north south east west top bottom front inside outside
above below near far here there this that these those what when where which who why how
ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty
thirty forty fifty sixty seventy eighty ninety hundred thousand million half quarter double
red green blue yellow orange purple pink brown black white gray silver gold dark light bright
dog cat horse cow pig sheep goat mouse bird fish duck chicken rabbit bear wolf fox lion tiger
monkey snake frog bee spider whale shark eagle owl deer zebra camel
bread milk water coffee tea juice cheese butter egg rice pasta pizza soup salad sugar salt
pepper honey cake cookie chocolate meat beef pork lemon grape melon peach pear plum potato
tomato onion carrot corn bean
house door window wall floor roof room kitchen garden table chair bed lamp clock phone
computer screen keyboard paper book pen pencil bag box cup plate bowl fork knife spoon bottle
glass key car bus train plane boat bike road street bridge city town village farm school
office shop market bank hospital park beach forest lake sea island desert hill valley
sun moon star sky cloud rain snow wind storm fire ice stone rock sand tree flower grass leaf
wood metal iron
man woman boy girl child baby mother father sister brother friend teacher doctor driver
king queen people family name
run walk jump sit stand sleep wake eat drink cook read write draw sing dance swim fly drive
ride climb push pull lift drop throw catch kick hit cut build break fix clean wash
buy sell pay give take bring carry hold find lose keep show hide look watch listen hear speak
talk say tell ask think know learn teach remember forget like love hate want need try use
make turn move change follow lead win fall grow
big small long short tall high low wide narrow thick thin heavy hot cold warm cool wet dry
new old young fresh dirty full empty hard soft quick slow loud quiet happy sad angry
tired hungry good bad best worst easy early late free busy rich poor safe strong weak
sweet sour bitter nice real simple
time day life world hand head face eye ear nose mouth tooth hair arm leg foot heart blood
voice sound music song word story game ball team money price number letter color shape
line point side part place space power energy noise question problem idea reason
alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november
oscar papa quebec romeo sierra tango uniform victor whiskey yankee zulu
monday tuesday wednesday thursday friday saturday sunday
january february march april may june july august september october december
""".split()

# Words kept out of pretraining: the few-shot benchmark's new words (and the page test's).
HELDOUT_WORDS = """
apple banana cherry river mountain pocket window_unused purple_unused guitar rocket
lantern candle marble velvet thunder whistle pillow basket ladder mirror
ocean garlic jacket violin tunnel wizard puzzle dragon pencil_unused helmet
magnet orbit saddle cactus walnut meadow copper harbor falcon tulip
""".split()
HELDOUT_WORDS = [w for w in HELDOUT_WORDS if not w.endswith("_unused")]

# espeak-ng: English accents, and other languages reading English (foreign accents).
ESPEAK_ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                  "en-gb-x-rp", "en-029"]
ESPEAK_FOREIGN = ["de", "fr-fr", "es", "it", "nl", "sv", "pl", "pt-br", "hi", "da", "ru", "cs"]
ESPEAK_VARIANTS = """
m1 m2 m3 m5 m8 f1 f2 f3 adam alex alicia andrea andy antonio aunty belinda benjamin boris
caleb david denis diogo ed edward edward2 gene gene2 gustave henrique hugo iven iven2 iven3
iven4 jacky john klatt klatt2 klatt3 klatt4 klatt5 klatt6 lee marco mario max michael mike
miguel norbert pablo paul pedro quincy rob robert sandro shelby steph steph2 steph3 victor
zac grandma grandpa anika croak whisper
""".split()
# Held out: one accent and these variants never speak in pretraining.
ESPEAK_HELDOUT_ACCENTS = ["en-us-nyc"]
ESPEAK_HELDOUT_VARIANTS = ["f4", "f5", "m4", "m6", "m7", "Annie", "linda", "travis", "michel",
                           "whisperf"]
FLITE_VOICES = ["kal", "kal16", "awb", "rms"]
FLITE_HELDOUT = ["slt"]
FESTIVAL_VOICES = ["kal_diphone", "ked_diphone"]
FESTIVAL_HELDOUT = ["cmu_us_slt_arctic_hts"]
# MBROLA voices (Debian contrib `mbrola-*`) through espeak-ng: diphones cut from recordings of
# real people, so real timbres. The English ones and those of other languages that espeak-ng
# maps to English (`-en`). Held out: three that never speak in pretraining.
MBROLA_VOICES = ["mb-us1", "mb-us2", "mb-en1", "mb-af1-en", "mb-de1-en", "mb-de2-en", "mb-de3-en",
                 "mb-de4-en", "mb-de6-en", "mb-fr1-en", "mb-gr2-en", "mb-hu1-en", "mb-nl2-en",
                 "mb-pl1-en", "mb-ro1-en", "mb-sw1-en", "mb-sw2-en"]
MBROLA_HELDOUT = ["mb-us3", "mb-de5-en", "mb-fr4-en"]

# FSDD speakers whose recordings may be perturbed into pretraining clips; theo and yweweler are the
# held-out speakers of the few-shot benchmark and are never read.
FSDD_SPEAKERS = ["george", "jackson", "lucas", "nicolas"]
DEFAULT_FSDD = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "fsdd" / "recordings"

SOUND_THEMES = [Path("/usr/share/sounds/freedesktop/stereo"), Path("/usr/share/sounds/Yaru/stereo")]


def warn(message):
    print(f"make_pretrain_corpus: warning: {message}", file=sys.stderr)


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True, **kw)


class Engines:
    """Which engines and voices answer on this machine."""

    def __init__(self, scratch, mbrola):
        self.scratch = scratch
        self.espeak = shutil.which("espeak-ng") is not None
        self.flite = [v for v in FLITE_VOICES + FLITE_HELDOUT if self._flite_ok(v)] if shutil.which("flite") else []
        self.festival = [v for v in FESTIVAL_VOICES + FESTIVAL_HELDOUT if self._festival_ok(v)] if shutil.which("festival") else []
        self.mbrola = [v for v in MBROLA_VOICES if self._mbrola_ok(v)] if self.espeak and mbrola else []
        if not self.espeak:
            warn("espeak-ng is not installed: its voices are skipped")
        if not shutil.which("flite"):
            warn("flite is not installed: its voices are skipped")
        if not shutil.which("festival"):
            warn("festival is not installed: its voices are skipped")
        for v in FLITE_VOICES + FLITE_HELDOUT:
            if shutil.which("flite") and v not in self.flite:
                warn(f"flite voice {v} does not speak: skipped")
        for v in FESTIVAL_VOICES + FESTIVAL_HELDOUT:
            if shutil.which("festival") and v not in self.festival:
                warn(f"festival voice {v} is not installed (Debian festvox-*): skipped")

    def _mbrola_ok(self, voice):
        out = self.scratch / f"probe-{voice}.wav"
        try:
            run(["espeak-ng", "-v", voice, "-w", str(out), "yes"], timeout=30)
            return out.is_file() and out.stat().st_size > 1000
        except (subprocess.SubprocessError, OSError):
            warn(f"MBROLA voice {voice} does not speak (Debian contrib mbrola-{voice[3:6]}): skipped")
            return False

    def _flite_ok(self, voice):
        out = self.scratch / f"probe-flite-{voice}.wav"
        try:
            run(["flite", "-voice", voice, "-t", "yes", "-o", str(out)], timeout=30)
            return out.stat().st_size > 1000
        except (subprocess.SubprocessError, OSError):
            return False

    def _festival_ok(self, voice):
        out = self.scratch / f"probe-festival-{voice}.wav"
        try:
            festival_batch(voice, [("yes", out)], self.scratch)
            return out.exists() and out.stat().st_size > 1000
        except (subprocess.SubprocessError, OSError):
            return False


def festival_batch(voice, items, scratch):
    """Synthesises (text, path) pairs with one festival process."""
    script = [f"(voice_{voice})"]
    for text, path in items:
        script.append(f'(utt.save.wave (utt.synth (Utterance Text "{text}")) "{path}" (quote riff))')
    fd, name = tempfile.mkstemp(suffix=".scm", dir=scratch)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(script) + "\n")
    try:
        run(["festival", "-b", name], timeout=600)
    finally:
        os.unlink(name)


def voice_pool(engines, heldout):
    """Voice descriptions (engine, voice, accent) for pretraining or the held-out evaluation."""
    pool = []
    if engines.espeak:
        if heldout:
            accents = ESPEAK_HELDOUT_ACCENTS + ESPEAK_ACCENTS
            for variant in ESPEAK_HELDOUT_VARIANTS:
                for accent in accents:
                    pool.append(("espeak", f"{accent}+{variant}"))
        else:
            for variant in ESPEAK_VARIANTS:
                for accent in ESPEAK_ACCENTS + ESPEAK_FOREIGN:
                    pool.append(("espeak", f"{accent}+{variant}"))
    for v in engines.flite:
        if (v in FLITE_HELDOUT) == heldout:
            pool.append(("flite", v))
    for v in engines.festival:
        if (v in FESTIVAL_HELDOUT) == heldout:
            pool.append(("festival", v))
    return pool


def voice_list(pool):
    return sorted({f"{engine}:{voice}" for engine, voice in pool})


def clip_plan(rng, label, text, voice, heavy):
    """One clip's synthesis and augmentation parameters."""
    engine, name = voice
    return {
        "label": label, "text": text, "engine": engine, "voice": name,
        # espeak speaks at its own rate and pitch; the others are changed by sox afterwards.
        "rate": rng.randint(115, 210), "pitch": rng.randint(15, 85),
        "tempo": round(rng.uniform(0.8, 1.25), 3) if engine != "espeak" else 1.0,
        "cents": rng.randint(-350, 350) if engine != "espeak" else 0,
        "reverb": rng.randint(10, 90) if rng.random() < (0.5 if heavy else 0.25) else 0,
        "room": rng.randint(20, 100),
        "level_db": round(rng.uniform(1, 20 if heavy else 10), 1),
        "noise": rng.choice(["pinknoise", "whitenoise", "brownnoise", "theme"]) if rng.random() < (0.6 if heavy else 0.3) else None,
        "snr_db": round(rng.uniform(8 if heavy else 18, 35), 1),
        "onset": round(rng.uniform(0.02, 0.3), 3),
        "tail": round(rng.uniform(0.05, 0.4), 3),
    }


def duration(path):
    out = subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def finish(raw, plan, out, themes, scratch, rng, index):
    """Resamples, changes speed/pitch, adds room, level, onset and noise: raw → out."""
    effects = []
    if plan["tempo"] != 1.0:
        effects += ["tempo", "-s", str(plan["tempo"])]
    if plan["cents"]:
        effects += ["pitch", str(plan["cents"])]
    effects += ["rate", str(SAMPLE_RATE)]
    if plan.get("mic"):
        # Another microphone and channel: band limits and one resonance, with headroom for the boost.
        mic = plan["mic"]
        effects += ["gain", "-10", "highpass", str(mic["highpass"]), "lowpass", str(mic["lowpass"]),
                    "equalizer", str(mic["eq_hz"]), "1.0q", str(mic["eq_db"])]
    if plan["reverb"]:
        effects += ["reverb", str(plan["reverb"]), "50", str(plan["room"])]
    speech = scratch / f"{index}-speech.wav"
    # Speech is cut to its audible part first, so onset and tail are the plan's.
    trim = [] if plan["engine"] == "noise" else [
        "silence", "1", "0.01", "0.1%", "reverse", "silence", "1", "0.01", "0.1%", "reverse"]
    run(["sox", str(raw), "-c", "1", "-b", "16", str(speech)] + effects + trim
        + ["gain", "-n", str(-plan["level_db"])])
    length = min(duration(speech) + plan["onset"] + plan["tail"], MAX_SECONDS)
    padded = ["pad", str(plan["onset"]), "2", "trim", "0", f"{length:.3f}"]
    if plan["noise"] is None:
        run(["sox", str(speech), "-b", "16", str(out)] + padded)
    else:
        noise_level = plan["level_db"] + plan["snr_db"]
        if plan["noise"] == "theme" and themes:
            theme = rng.choice(themes)
            noise = ["|sox " + str(theme) + f" -p remix - rate {SAMPLE_RATE} repeat 3 trim 0 {length:.3f} gain -n -{noise_level}"]
        else:
            kind = plan["noise"] if plan["noise"] != "theme" else "pinknoise"
            noise = [f"|sox -n -r {SAMPLE_RATE} -c 1 -p synth {length:.3f} {kind} gain -n -{noise_level}"]
        padded_speech = scratch / f"{index}-padded.wav"
        run(["sox", str(speech), str(padded_speech)] + padded)
        run(["sox", "-m", "-v", "1", str(padded_speech), "-v", "1"] + noise + ["-b", "16", str(out)])
        padded_speech.unlink()
    speech.unlink()


def synthesise(plans, dest, scratch, themes, seed):
    """Makes every planned clip; festival clips are synthesised in one batch per voice first."""
    rng = random.Random(seed)
    raw_dir = scratch / "raw"
    raw_dir.mkdir(exist_ok=True)
    by_festival = {}
    for i, plan in enumerate(plans):
        if plan["engine"] == "festival":
            by_festival.setdefault(plan["voice"], []).append((plan["text"], raw_dir / f"{i}.wav"))
    for voice, items in by_festival.items():
        festival_batch(voice, items, scratch)

    def one(i):
        plan = plans[i]
        raw = raw_dir / f"{i}.wav"
        out = dest / plan["label"] / plan["file"]
        local = random.Random(seed * 1_000_003 + i)
        try:
            if plan["engine"] == "espeak":
                run(["espeak-ng", "-v", plan["voice"], "-s", str(plan["rate"]), "-p", str(plan["pitch"]), "-w", str(raw), plan["text"]], timeout=60)
            elif plan["engine"] == "flite":
                run(["flite", "-voice", plan["voice"], "-t", plan["text"], "-o", str(raw)], timeout=60)
            elif plan["engine"] == "recording":
                shutil.copyfile(plan["text"], raw)
            elif plan["engine"] == "sound":
                shutil.copyfile(plan["text"], raw.with_suffix(".oga"))
                raw = raw.with_suffix(".oga")
            elif plan["engine"] == "noise":
                run(["sox", "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(raw), "synth", str(plan["seconds"]), plan["text"]])
            finish(raw, plan, out, themes, scratch, local, i)
            return None
        except (subprocess.SubprocessError, OSError) as e:
            detail = getattr(e, "stderr", None) or b""
            if isinstance(detail, bytes):
                detail = detail.decode(errors="replace")
            return f"{plan['engine']}:{plan['voice']} \"{plan['text']}\": {e} {detail.strip()[:200]}"
        finally:
            for p in (raw, raw.with_suffix(".wav")):
                if p.exists():
                    p.unlink()

    failures = []
    jobs = int(os.environ.get("CORPUS_JOBS", "2"))
    done = 0
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for failure in pool.map(one, range(len(plans))):
            done += 1
            if failure:
                failures.append(failure)
            if done % 500 == 0 or done == len(plans):
                rate = done / max(time.time() - t0, 1e-6)
                print(f"  {dest.name}: {done}/{len(plans)} clips ({rate:.0f}/s, ETA {(len(plans) - done) / rate:.0f} s)", flush=True)
    return failures


def fsdd_plans(dir, perturbations, microphones, rng):
    """Speed-, pitch- and room-perturbed copies of the FSDD training takes (index ≥ 10) of the
    pretraining speakers: more real voices from four real speakers. With `microphones`, three in
    four copies also go through another "microphone" (band limits and one resonance)."""
    plans = []
    if perturbations <= 0:
        return plans
    if not dir.is_dir():
        warn(f"{dir} is absent: no perturbed FSDD recordings")
        return plans
    for path in sorted(dir.glob("*.wav")):
        parts = path.stem.split("_")
        if len(parts) != 3 or parts[1] not in FSDD_SPEAKERS or not parts[2].isdigit() or int(parts[2]) < 10:
            continue
        for r in range(perturbations):
            plan = clip_plan(rng, parts[0], str(path), ("recording", parts[1]), True)
            plan["tempo"] = round(rng.uniform(0.85, 1.15), 3)
            plan["cents"] = rng.randint(-400, 400)
            if microphones and rng.random() < 0.75:
                plan["mic"] = {"highpass": rng.randint(60, 300), "lowpass": rng.randint(2600, 3900),
                               "eq_hz": rng.randint(250, 3000), "eq_db": round(rng.uniform(-9, 9), 1)}
            plan["file"] = f"fsdd-{path.stem}-{r}.wav"
            plans.append(plan)
    return plans


def mbrola_plans(vocabulary, voices, renditions, digit_renditions, rng):
    """Clips of every word by the MBROLA voices (`renditions` per word, `digit_renditions` per
    digit), drawn with their own generator so that the rest of the corpus does not change."""
    plans = []
    for label, text in vocabulary:
        count = digit_renditions if text in DIGITS else renditions
        for r in range(count):
            voice = ("espeak", voices[(r + rng.randrange(len(voices))) % len(voices)])
            plan = clip_plan(rng, label, text, voice, True)
            plan["file"] = f"mbrola-{r:03d}-{voice[1]}.wav"
            plans.append(plan)
    return plans


def plans_for(vocabulary, pool, renditions, rng, heavy, sounds=(), noise_clips=0):
    plans = []
    for label, text in vocabulary:
        for r in range(renditions):
            voice = rng.choice(pool)
            plan = clip_plan(rng, label, text, voice, heavy)
            plan["file"] = f"{r:03d}-{voice[0]}-{voice[1].replace('+', '_')}.wav"
            plans.append(plan)
    for label, path in sounds:
        for r in range(renditions):
            plan = clip_plan(rng, label, str(path), ("sound", path.stem), heavy)
            plan["tempo"] = round(rng.uniform(0.85, 1.15), 3)
            plan["cents"] = rng.randint(-300, 300)
            plan["file"] = f"{r:03d}-sound.wav"
            plans.append(plan)
    for r in range(noise_clips):
        kind = rng.choice(["pinknoise", "whitenoise", "brownnoise"])
        plan = clip_plan(rng, "_noise_", kind, ("noise", kind), heavy)
        plan.update(tempo=1.0, cents=0, seconds=round(rng.uniform(0.3, 1.2), 2), level_db=round(rng.uniform(10, 45), 1),
                    noise="theme" if rng.random() < 0.5 else None, snr_db=round(rng.uniform(-10, 10), 1))
        plan["file"] = f"{r:04d}-{kind}.wav"
        plans.append(plan)
    return plans


def check_failures(failures, planned):
    for f in failures[:20]:
        warn(f"skipped {f}")
    if len(failures) > 0.05 * planned:
        sys.exit(f"make_pretrain_corpus: {len(failures)} of {planned} clips failed; corpus not written")


def write_heldout_lists(dir, eval_pool):
    (dir / "heldout_words.txt").write_text("\n".join(HELDOUT_WORDS) + "\n")
    (dir / "heldout_voices.txt").write_text("\n".join(voice_list(eval_pool)) + "\n")


def add_to_train(out, tmp, count, added):
    """Moves the clips made in `tmp/train` into the corpus in `out`; `added` goes into its manifest."""
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        sys.exit(f"make_pretrain_corpus: {manifest_path} is missing: --fsdd-only and --mbrola-only need an existing corpus")
    for label_dir in (tmp / "train").iterdir():
        for clip in label_dir.iterdir():
            os.replace(clip, out / "train" / label_dir.name / clip.name)
    manifest = json.loads(manifest_path.read_text())
    manifest["clips"]["train"] = sum(1 for _ in (out / "train").rglob("*.wav"))
    manifest.update(added)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp / "manifest.json", manifest_path)
    print(f"make_pretrain_corpus: {count} clips added to {out / 'train'}")


def replace_eval(out, tmp, eval_pool, failed, renditions):
    """Swaps the held-out set of the corpus in `out` for the one made in `tmp`."""
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        sys.exit(f"make_pretrain_corpus: {manifest_path} is missing: --eval-only needs an existing corpus")
    manifest = json.loads(manifest_path.read_text())
    write_heldout_lists(tmp, eval_pool)
    manifest["clips"]["eval"] = sum(1 for _ in (tmp / "eval").rglob("*.wav"))
    manifest.update(heldout_voices=len(eval_pool), eval_renditions=renditions, eval_failed=failed)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    old = out / "eval.old"
    shutil.rmtree(old, ignore_errors=True)
    if (out / "eval").exists():
        (out / "eval").rename(old)
    (tmp / "eval").rename(out / "eval")
    for name in ("heldout_words.txt", "heldout_voices.txt", "manifest.json"):
        os.replace(tmp / name, out / name)
    shutil.rmtree(old, ignore_errors=True)
    print(f"make_pretrain_corpus: {manifest['clips']['eval']} held-out clips → {out / 'eval'}")


def main():
    default_out = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "petl-ast" / "corpus"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=default_out, help=f"corpus folder (default {default_out})")
    parser.add_argument("--renditions", type=int, default=24, help="clips per pretraining word")
    parser.add_argument("--eval-renditions", type=int, default=24, help="clips per held-out word")
    parser.add_argument("--fsdd", type=Path, default=DEFAULT_FSDD, help=f"FSDD recordings (default {DEFAULT_FSDD})")
    parser.add_argument("--fsdd-perturbations", type=int, default=8,
                        help="perturbed copies of each FSDD training take of the pretraining speakers")
    parser.add_argument("--fsdd-microphones", action="store_true",
                        help="pass three in four perturbed FSDD copies through another microphone (band limits, one resonance)")
    parser.add_argument("--fsdd-only", action="store_true",
                        help="add only the perturbed FSDD takes to an existing corpus's train/")
    parser.add_argument("--mbrola-renditions", type=int, default=0,
                        help="clips per pretraining word by the MBROLA voices (real timbres; the built-in backbone: 0)")
    parser.add_argument("--mbrola-digit-renditions", type=int, default=0,
                        help="clips per digit by the MBROLA voices (the built-in backbone: 0)")
    parser.add_argument("--mbrola-only", action="store_true",
                        help="add only the MBROLA clips to an existing corpus's train/")
    parser.add_argument("--eval-only", action="store_true",
                        help="remake only the held-out set (eval/, heldout_*.txt) of an existing corpus")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="synthesis processes at once")
    args = parser.parse_args()
    os.environ["CORPUS_JOBS"] = str(args.jobs)
    assert not set(WORDS) & set(HELDOUT_WORDS), set(WORDS) & set(HELDOUT_WORDS)
    assert len(set(WORDS)) == len(WORDS), "duplicate words"
    if not shutil.which("sox"):
        sys.exit("make_pretrain_corpus: sox is not installed (apt install sox libsox-fmt-all)")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    # The new corpus (or held-out set) is made beside the old one and renamed into place.
    tmp = Path(tempfile.mkdtemp(prefix=args.out.name + ".tmp-", dir=args.out.parent))
    scratch = tmp / "scratch"
    scratch.mkdir()
    try:
        engines = Engines(scratch, args.mbrola_renditions + args.mbrola_digit_renditions > 0)
        train_pool, eval_pool = voice_pool(engines, False), voice_pool(engines, True)
        if not train_pool or not eval_pool:
            sys.exit("make_pretrain_corpus: no speech engine works (install espeak-ng, flite or festival)")
        themes = [p for d in SOUND_THEMES if d.is_dir() for p in sorted(d.glob("*.oga"))
                  if not p.name.startswith("audio-channel-")]
        if not themes:
            warn("no desktop sound themes (Debian sound-theme-freedesktop, yaru-theme-sound): no sound events, synthetic noise only")
        rng = random.Random(args.seed)
        vocabulary = [(str(DIGITS.index(w)) if w in DIGITS else w, w) for w in DIGITS + WORDS]
        sounds = [(f"sound-{p.parent.parent.name.lower()}-{p.stem}", p) for p in themes]
        train_plans = plans_for(vocabulary, train_pool, args.renditions, rng, True, sounds, noise_clips=10 * args.renditions)
        eval_plans = plans_for([(w, w) for w in HELDOUT_WORDS], eval_pool, args.eval_renditions, rng, False)
        recording_plans = fsdd_plans(args.fsdd, args.fsdd_perturbations, args.fsdd_microphones,
                                     random.Random(args.seed + 7))
        if not engines.mbrola and args.mbrola_renditions + args.mbrola_digit_renditions > 0:
            warn("no MBROLA voice speaks (Debian contrib mbrola, mbrola-us1, …): no MBROLA clips")
        mbrola = mbrola_plans(vocabulary, engines.mbrola, args.mbrola_renditions, args.mbrola_digit_renditions,
                              random.Random(args.seed + 11)) if engines.mbrola else []
        for only, plans, seed, added in ((args.fsdd_only, recording_plans, args.seed + 2,
                                          dict(fsdd_perturbations=args.fsdd_perturbations, fsdd_microphones=args.fsdd_microphones)),
                                         (args.mbrola_only, mbrola, args.seed + 3,
                                          dict(mbrola_voices=engines.mbrola, mbrola_renditions=args.mbrola_renditions,
                                               mbrola_digit_renditions=args.mbrola_digit_renditions))):
            if only:
                for label in {p["label"] for p in plans}:
                    (tmp / "train" / label).mkdir(parents=True, exist_ok=True)
                failures = synthesise(plans, tmp / "train", scratch, themes, seed)
                check_failures(failures, len(plans))
                add_to_train(args.out, tmp, len(plans) - len(failures), added)
                shutil.rmtree(tmp)
                return
        train_plans += recording_plans
        # After the recordings, with the recordings' seeds unchanged: the MBROLA clips get their own.
        train_plans += mbrola
        for plans, name in ((train_plans, "train"), (eval_plans, "eval"))[1 if args.eval_only else 0:]:
            for label in {p["label"] for p in plans}:
                (tmp / name / label).mkdir(parents=True, exist_ok=True)
        print(f"make_pretrain_corpus: {len(train_plans)} pretraining clips ({len(vocabulary)} words, {len(sounds)} sounds, "
              f"{len(train_pool)} voices), {len(eval_plans)} held-out clips ({len(HELDOUT_WORDS)} words, {len(eval_pool)} voices)", flush=True)
        if args.eval_only:
            failures = synthesise(eval_plans, tmp / "eval", scratch, themes, args.seed + 1)
            check_failures(failures, len(eval_plans))
            replace_eval(args.out, tmp, eval_pool, len(failures), args.eval_renditions)
            shutil.rmtree(tmp)
            return
        failures = synthesise(train_plans, tmp / "train", scratch, themes, args.seed)
        failures += synthesise(eval_plans, tmp / "eval", scratch, themes, args.seed + 1)
        check_failures(failures, len(train_plans) + len(eval_plans))
        labels = sorted(p.name for p in (tmp / "train").iterdir())
        counts = {name: sum(1 for _ in (tmp / name).rglob("*.wav")) for name in ("train", "eval")}
        (tmp / "words.txt").write_text("\n".join(labels) + "\n")
        write_heldout_lists(tmp, eval_pool)
        (tmp / "voices.txt").write_text("\n".join(voice_list(train_pool + [("espeak", v) for v in engines.mbrola])) + "\n")
        digest = hashlib.sha256()
        for p in sorted((tmp / "train").rglob("*.wav")):
            digest.update(p.read_bytes())
        manifest = {
            "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
            "seed": args.seed, "renditions": args.renditions, "eval_renditions": args.eval_renditions,
            "sources": {
                "espeak-ng": subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip() if engines.espeak else None,
                "flite": engines.flite, "festival": engines.festival, "mbrola": engines.mbrola,
                "sound_themes": [str(d) for d in SOUND_THEMES if d.is_dir()],
                "real_speech": f"FSDD speakers {', '.join(FSDD_SPEAKERS)}: their takes as they are (read by pretrain-demo --data) and {args.fsdd_perturbations} speed/pitch/room-perturbed copies{' (three in four through another microphone)' if args.fsdd_microphones else ''} of each training take (index >= 10) here; theo and yweweler held out",
            },
            "labels": len(labels), "words": len(vocabulary), "sounds": [s[0] for s in sounds],
            "train_voices": len(train_pool) + len(engines.mbrola), "heldout_voices": len(eval_pool),
            "mbrola_heldout": MBROLA_HELDOUT, "mbrola_renditions": args.mbrola_renditions,
            "mbrola_digit_renditions": args.mbrola_digit_renditions,
            "clips": counts, "failed": len(failures), "train_sha256": digest.hexdigest(),
            "augmentation": "speed, pitch, level 1-20 dB below full scale, reverb (p 0.5), noise at 8-35 dB SNR (p 0.6), onset 0.02-0.3 s",
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(scratch)
        if args.out.exists():
            old = args.out.with_name(args.out.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            args.out.rename(old)
            tmp.rename(args.out)
            shutil.rmtree(old)
        else:
            tmp.rename(args.out)
        print(f"make_pretrain_corpus: {counts['train']} pretraining clips in {len(labels)} labels, "
              f"{counts['eval']} held-out clips → {args.out}")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


if __name__ == "__main__":
    main()
