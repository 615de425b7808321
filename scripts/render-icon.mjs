// Renders the Marketplace icon (media/icon.png, 256×256) from the activity-bar glyph media/drag.svg:
// the glyph in white on a rounded dark-blue square. The gallery needs a PNG of at least 128×128;
// rerun this after changing the glyph: node scripts/render-icon.mjs
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SIZE = 256;
const BACKGROUND = '#1e3a5f';

const inset = SIZE * 0.14;
const side = SIZE - 2 * inset;
// Drawn at its final size (the SVG says 24×24; scaling a 24-pixel raster up would blur it).
const svg = readFileSync(path.join(root, 'media', 'drag.svg'), 'utf8')
  .replace(/currentColor/g, '#ffffff')
  .replace('width="24" height="24"', `width="${side}" height="${side}"`);
const glyph = await loadImage(Buffer.from(svg));
const canvas = createCanvas(SIZE, SIZE);
const ctx = canvas.getContext('2d');
ctx.fillStyle = BACKGROUND;
ctx.beginPath();
ctx.roundRect(0, 0, SIZE, SIZE, SIZE * 0.18);
ctx.fill();
ctx.drawImage(glyph, inset, inset, side, side);
writeFileSync(path.join(root, 'media', 'icon.png'), await canvas.encode('png'));
console.log(`media/icon.png: ${SIZE}×${SIZE}`);
