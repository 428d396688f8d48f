// `monet-ts`: the fixture checker (everything `monet-ts/fixtures` exports), the layer kinds' declarations and the
// `monet` command as a function. The rest is under subpaths: `monet-ts/reference` (the float64 reference),
// `monet-ts/layers` (the layers on a device), `monet-ts/wasm`, `monet-ts/webgpu` (the two float32 backends).

export * from './fixtures/index.ts';
export {
  ConfigError,
  kindDecl,
  type KindDecl,
  type KindLayout,
  type ParamSpec,
  type StateSpec,
} from './kinds/index.ts';
export { lmParams, lmState, parseLm } from './kinds/lm.ts';
/** The `monet` command line: `await main(['check', 'fixtures'])` returns the exit code. */
export { main } from './cli/main.ts';
