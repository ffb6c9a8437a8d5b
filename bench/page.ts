// The 100 KB HTML page of the gzip scenarios: text that compresses like a real page (about 3.4:1 with gzip
// level 6), made the same every run. A page of a few repeated words would be a pathological input for zlib
// (long hash chains) and flatter any other deflate.

/** xorshift32: a fixed sequence, so every run and every server gets the same page. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

export function benchPage(size = 100 * 1024): Buffer {
  const rnd = random(0x9e3779b9);
  const syllables = [
    'ka',
    'ro',
    'mi',
    'ten',
    'sa',
    'lo',
    'ver',
    'an',
    'el',
    'is',
    'or',
    'un',
    'de',
    'pra',
    'sto',
    'li',
  ];
  syllables.push(
    'ne',
    'qua',
    'bi',
    'tor',
    'en',
    'al',
    'ca',
    'mo',
    'ri',
    'sen',
    'tu',
    'pe',
    'gra',
    'fi',
    'no',
    'ha',
  );
  syllables.push('vel', 'ju', 'ces', 'dor', 'ma', 'ti', 'ze');
  const vocabulary: string[] = [];
  for (let i = 0; i < 600; i++) {
    let word = '';
    const n = 1 + Math.floor(rnd() * 3.2);
    for (let j = 0; j < n; j++) word += syllables[Math.floor(rnd() * syllables.length)];
    vocabulary.push(word);
  }
  // Word frequencies fall off steeply, as in natural language.
  const word = () => vocabulary[Math.floor(rnd() ** 3.4 * vocabulary.length)];
  let html = '<!doctype html><html><head><meta charset="utf-8"><title>Benchmark page</title></head><body>\n';
  for (let n = 0; html.length < size; n++) {
    if (n % 6 === 0) html += `<h2>${word()} ${word()}</h2>\n`;
    let p = '<p class="body-text">';
    const sentences = 2 + Math.floor(rnd() * 5);
    for (let k = 0; k < sentences; k++) {
      const words = Array.from({ length: 6 + Math.floor(rnd() * 14) }, word);
      let text = words.join(' ');
      text = text[0].toUpperCase() + text.slice(1);
      if (rnd() < 0.2)
        text = text.replace(
          / (\w+)/,
          (_m, w: string) => ` <a href="/${w}/${Math.floor(rnd() * 999)}">${w}</a>`,
        );
      p += text + (rnd() < 0.1 ? '? ' : rnd() < 0.15 ? `, ${Math.floor(rnd() * 2026)}. ` : '. ');
    }
    html += `${p.trimEnd()}</p>\n`;
  }
  return Buffer.from(`${html.slice(0, size - 15)}</body></html>\n`);
}
