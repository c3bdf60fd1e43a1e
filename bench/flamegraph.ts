import fs from "node:fs";
import { SourceMap } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { root } from "./harness.ts";

/**
 * Flame graphs of a V8 CPU profile (`node --cpu-prof`), as clinic flame draws them: one box per call
 * path, as wide as the time spent in it and what it called, callers below callees, coloured by where
 * the code comes from (the application, a package, Node itself, or V8's own work). Written as a
 * self-contained SVG (hover a box for its name, place and share) and as folded stacks (`a;b;c <µs>` a
 * line), which Brendan Gregg's flamegraph.pl, speedscope and most flame graph viewers read.
 *
 *   npx tsx bench/flamegraph.ts <file.cpuprofile> [<out.svg>]   (also writes <out>.folded)
 */

export interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

export type Frame = CpuProfile["nodes"][number]["callFrame"];

/** What a box is called and where its code comes from. */
export interface FrameLabel {
  name: string;
  kind: "app" | "package" | "node" | "v8";
}

const sourceMaps = new Map<string, SourceMap | null>();

/** The original file and line of a frame in the production build, through the build's source map. */
export function original(frame: Frame): { url: string; line: number } {
  if (!frame.url.includes("/apps/server/dist/")) return { url: frame.url, line: frame.lineNumber + 1 };
  let map = sourceMaps.get(frame.url);
  if (map === undefined) {
    const file = `${fileURLToPath(frame.url)}.map`;
    map = fs.existsSync(file) ? new SourceMap(JSON.parse(fs.readFileSync(file, "utf8"))) : null;
    sourceMaps.set(frame.url, map);
  }
  const entry = map?.findEntry(frame.lineNumber, frame.columnNumber) as { originalSource?: string; originalLine?: number } | undefined;
  if (!entry?.originalSource) return { url: frame.url, line: frame.lineNumber + 1 };
  return { url: path.resolve(path.dirname(fileURLToPath(frame.url)), entry.originalSource), line: (entry.originalLine ?? 0) + 1 };
}

/** Where a frame comes from: a package, our source file, or Node itself. */
export function origin(url: string): string {
  if (!url) return "(native)";
  if (url.startsWith("node:")) return url;
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const rest = url.slice(modules + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  return path.relative(root, url.replace(/^file:\/\//, ""));
}

/** A box's name (function, package or file, line) and kind, through the build's source maps: a bundled package is a package. */
export function sourceLabel(frame: Frame): FrameLabel {
  const source = original(frame);
  const where = origin(source.url);
  const name = `${frame.functionName || "(anonymous)"}${source.url ? ` ${where}:${source.line}` : ""}`;
  if (!source.url) return { name, kind: "v8" };
  if (where.startsWith("node:")) return { name, kind: "node" };
  // WebAssembly here is undici's HTTP parser (llhttp): a package's.
  return { name, kind: source.url.includes("node_modules/") || source.url.startsWith("wasm:") ? "package" : "app" };
}

interface Box {
  label: FrameLabel;
  micros: number;
  children: Box[];
}

/** Hue, its spread over a kind's boxes, and saturation: the application orange, packages blue, Node green, V8 grey. */
const COLOURS: Record<FrameLabel["kind"], [number, number, number]> = {
  app: [20, 25, 85],
  package: [200, 30, 60],
  node: [95, 35, 50],
  v8: [0, 0, 0],
};
const WIDTH = 1200;
const ROW = 16;

const xmlText = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** Each node's own sampled time, in µs. */
export function selfTimes(profile: Pick<CpuProfile, "samples" | "timeDeltas">): Map<number, number> {
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  return self;
}

/** The profile's call tree with each node's time, the process's idle time left out. */
function tree(profile: CpuProfile, label: (frame: Frame) => FrameLabel): Box {
  const self = selfTimes(profile);
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const build = (id: number): Box | undefined => {
    const node = byId.get(id);
    if (!node || node.callFrame.functionName === "(idle)") return undefined;
    const children = (node.children ?? []).map(build).filter((box): box is Box => box !== undefined && box.micros > 0);
    children.sort((a, b) => a.label.name.localeCompare(b.label.name));
    const micros = (self.get(id) ?? 0) + children.reduce((sum, child) => sum + child.micros, 0);
    return { label: label(node.callFrame), micros, children };
  };
  const root = profile.nodes[0];
  const box = root ? build(root.id) : undefined;
  return { label: { name: "all", kind: "v8" }, micros: box?.micros ?? 0, children: box?.children ?? [] };
}

/** The flame graph of a profile, as an SVG and as folded stacks. */
export function flameGraph(profile: CpuProfile, title: string, label: (frame: Frame) => FrameLabel = sourceLabel) {
  const root = tree(profile, label);
  const scale = root.micros > 0 ? WIDTH / root.micros : 0;
  // Rows drawn: boxes narrower than a third of a pixel (and what they called) are left out.
  const rows = (box: Box): number => (box.micros * scale < 0.3 ? 0 : 1 + Math.max(0, ...box.children.map(rows)));
  const height = rows(root) * ROW + 56;
  const folded: string[] = [];
  const boxes: string[] = [];
  const walk = (box: Box, x: number, level: number, stack: string) => {
    const own = box.micros - box.children.reduce((sum, child) => sum + child.micros, 0);
    if (own > 0 && level > 0) folded.push(`${stack} ${Math.round(own)}`);
    const width = box.micros * scale;
    if (width >= 0.3) {
      const [hue, spread, saturation] = COLOURS[box.label.kind];
      const shade = [...box.label.name].reduce((sum, char) => (sum * 31 + char.charCodeAt(0)) % 997, 7) / 997;
      const share = ((box.micros / root.micros) * 100).toFixed(2);
      const text = width > 40 ? xmlText(box.label.name.slice(0, Math.floor(width / 6.5))) : "";
      // The root is the lowest row, as in clinic flame and flamegraph.pl.
      const y = height - 10 - (level + 1) * ROW;
      boxes.push(
        `<g transform="translate(${x.toFixed(1)},${y})"><title>${xmlText(box.label.name)} (${box.label.kind}): ${(box.micros / 1000).toFixed(1)} ms, ${share} %</title>` +
          `<rect width="${width.toFixed(1)}" height="${ROW - 1}" fill="hsl(${Math.round(hue + shade * spread)},${saturation}%,${60 + Math.round(shade * 15)}%)"/>` +
          `<text x="3" y="${ROW - 4}">${text}</text></g>`,
      );
    }
    let offset = x;
    for (const child of box.children) {
      walk(child, offset, level + 1, `${stack};${child.label.name.replace(/;/g, ",")}`);
      offset += child.micros * scale;
    }
  };
  walk(root, 0, 0, "all");
  const legend = Object.entries(COLOURS)
    .map(
      ([kind, [hue, , saturation]], i) =>
        `<rect x="${WIDTH - 440 + i * 110}" y="26" width="12" height="12" fill="hsl(${hue},${saturation}%,65%)"/><text x="${WIDTH - 424 + i * 110}" y="36">${kind}</text>`,
    )
    .join("");
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="monospace" font-size="11">` +
    `<rect width="100%" height="100%" fill="#fafafa"/><text x="8" y="18" font-size="13">${xmlText(title)} — ${(root.micros / 1e6).toFixed(2)} s of CPU sampled</text>${legend}` +
    `${boxes.join("\n")}</svg>\n`;
  return { svg, folded: `${folded.join("\n")}\n` };
}

/** Writes `<base>.svg` and `<base>.folded` for a profile; answers the SVG's path. */
export function writeFlameGraph(profile: CpuProfile, base: string, title: string, label?: (frame: Frame) => FrameLabel): string {
  const { svg, folded } = flameGraph(profile, title, label);
  fs.writeFileSync(`${base}.svg`, svg);
  fs.writeFileSync(`${base}.folded`, folded);
  return `${base}.svg`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [input, output] = process.argv.slice(2);
  if (!input) throw new Error("usage: npx tsx bench/flamegraph.ts <file.cpuprofile> [<out.svg>]");
  const base = (output ?? input).replace(/\.(svg|cpuprofile)$/, "");
  const profile = JSON.parse(fs.readFileSync(input, "utf8")) as CpuProfile;
  console.log(`wrote ${writeFlameGraph(profile, base, path.basename(input))} and ${base}.folded`);
}
