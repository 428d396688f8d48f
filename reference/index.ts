// `monet-ts/reference`: the float64 reference — every layer's forward and hand-written backward, the decoder LM,
// the primitives they are built from, and the float64 finite-difference checker. One module per file of reference/.

export * from './activations.ts';
export * from './attention.ts';
export * from './batchnorm.ts';
export * from './common.ts';
export * from './cross-entropy.ts';
export * from './dense-ffn.ts';
export * from './embedding.ts';
export * from './gradcheck.ts';
export * from './linear.ts';
export * from './lm-ffn.ts';
export * from './lm-monet.ts';
export * from './lm-peer.ts';
export * from './lm.ts';
export * from './monet-aux.ts';
export * from './monet-expert-view.ts';
export * from './monet-hd.ts';
export * from './monet-layer.ts';
export * from './monet-router.ts';
export * from './monet-vd.ts';
export * from './normal.ts';
export * from './peer.ts';
export * from './rmsnorm.ts';
export * from './rng.ts';
export * from './rope.ts';
export * from './smoe.ts';
export * from './softmax.ts';
export * from './topk-ffn.ts';
export * from './topk.ts';
