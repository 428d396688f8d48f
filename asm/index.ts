// The WASM module's exports: every kernel of src/backend/kernels.ts (one file per family, mirroring reference/),
// plus what the loader needs to manage memory. Built four times by scripts/build-asm.mjs: plain SIMD and relaxed
// SIMD, each with its own memory and with an imported shared memory (threads).

export {
  fill, fillI32, copyBlock, widenBf16, axpby, addBias, colSum, sumSquares, activation, activationBackward, swiglu,
  swigluBackward, maskScale, stepGuard, copyIf, adamw,
} from './elementwise';
export { gemm, matmulGrouped, matmulGroupedTN, gemmScratchFloats } from './matmul';
export { gemvBf16, gemmBf16, gatherRowsBf16, matmulBf16ScratchFloats } from './bf16';
export {
  softmaxRows, softmaxBackward, topkRows, topkRowsBackward, thresholdTopkMask, thresholdScratchWords,
} from './softmax';
export {
  rmsnorm, rmsnormBackwardRows, rmsnormBackwardWeight, groupStats, batchnorm, batchnormBackward, runningStatsUpdate,
} from './norm';
export {
  monetRoute, monetUnifLoss, monetUnifBackward, monetAmbLoss, monetAmbBackward, headSum, headBroadcastAdd,
  monetHdMix, monetHdMixBackward, monetVdMix, monetVdMixBackward,
} from './monet';
export { peerRoute, peerRouteBackward, peerExperts, peerExpertsBackward } from './peer';
export {
  moeSort, moeDispatch, moeDispatchBackward, moeCombine, moeCombineBackward, smoeAux, smoeAuxBackward,
} from './smoe';
export {
  gatherRows, scatterAddRows, rope, ropeBackward, ropeScratchFloats, ropeTable, ropeApply, attention,
  attentionBackward, attentionScratchFloats, crossEntropy, crossEntropyRows, crossEntropySum, crossEntropyBackward,
} from './lm';

/** First free byte after the module's static data: the JS allocator owns memory from here on. */
export function heapBase(): usize {
  return __heap_base;
}

/** 1 in the relaxed-SIMD build, 0 in the plain one (so the loader can report which it runs). */
export function relaxedSimd(): i32 {
  return ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
}
