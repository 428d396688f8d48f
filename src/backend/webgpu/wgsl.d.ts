// WGSL shader sources are imported as text: by the Node loader hook (register-wgsl.mjs) and by esbuild's text loader.
declare module '*.wgsl' {
  const source: string;
  export default source;
}
