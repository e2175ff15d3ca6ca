/**
 * hardneg's public API. The pipeline, stage by stage: read pairs -> load embeddings ->
 * build the candidate pool -> search -> filter false negatives -> select -> write shards.
 */
export { HardnegError, isHardnegError } from './errors.js'
export type { ErrorCode, ErrorPlace } from './errors.js'
export type { CellValue, EmbeddingBlock, EmbeddingMatrix, FalseNegativeCounts, FilteredCandidate, MinedRow, PairRecord } from './types.js'
export { readPairs, collectPairs, PRESETS } from './pairs.js'
export type { ReadPairsOptions, PairsFormat, PresetName, PairPreset, PresetCarry } from './pairs.js'
export { readCorpus } from './corpus.js'
export type { ReadCorpusOptions } from './corpus.js'
export {
  hashImages, inspectImage, imageDistance, isNearDuplicate, formatImageHash, parseImageHash, IMAGE_HASH, DEFAULT_IMAGE_DUP_DISTANCE, IMAGE_CACHE_FILE,
} from './images.js'
export type {
  HashImagesOptions, HashImagesResult, InspectImageOptions, ImageRef, ImageInfo, HashedImage, ImageHash, BadImage, BadImageReason, ImageCacheStatus,
} from './images.js'
export { readEmbeddingHeader, readNpyHeader, loadEmbeddings, loadEmbeddingMatrix, checkEmbeddingShape } from './embeddings.js'
export type {
  EmbeddingHeader, EmbeddingFileOptions, EmbeddingFormat, EmbeddingDtype,
  NpyHeader, LoadEmbeddingsOptions, LoadEmbeddingMatrixOptions, ExpectedShape, EmbeddingSource, BadVector,
} from './embeddings.js'
export { buildPool, writeExclusions, normaliseText, EXCLUDE_WIDTH } from './pool.js'
export type { CandidatePool, CorpusRecord, PoolEntry, PoolOptions } from './pool.js'
export { createDuplicateCheck } from './duplicates.js'
export type { DuplicateCheck, DuplicateCheckOptions, DuplicateRule } from './duplicates.js'
export { createExactSearcher } from './search/exact.js'
export type { ExactSearchOptions, ExactSearcher } from './search/exact.js'
export { createHnswSearcher, dotRows } from './search/hnsw.js'
export type { HnswSearchOptions, HnswSearcher } from './search/hnsw.js'
export type { QueryBatch, SearchResult, RemovedCandidates, RemovedBy } from './search/_topk.js'
export { filterFalseNegatives, isFalseNegative, scoreCeiling, ceilingRule, checkRules, DEFAULT_RULES, RULE_NAMES } from './filters.js'
export type { FalseNegativeRules, FalseNegativeRule, CandidateScores } from './filters.js'
export { selectNegatives, candidatesNeeded, checkSelectOptions } from './select.js'
export type { SelectOptions, SelectOutcome } from './select.js'
export { mineGroup } from './negatives.js'
export type { MineGroupOptions, SearchMethod, HnswParams } from './negatives.js'
export { writeShards, readShards } from './shards.js'
export type { WriteShardsOptions, ShardInfo, ShardRow, CarriedColumn, ShardColumn } from './shards.js'
export { writeJsonlShards, writeRowsAs, toUnimeV2, IMAGE_COLUMNS, MMEB_COLUMNS, OUTPUT_FORMATS } from './formats.js'
export type { OutputFormat, UnimeV2Record, WriteJsonlShardsOptions } from './formats.js'
export { MiningStats } from './stats.js'
export type { MineSummary, GroupCounts, ScoreSummary } from './stats.js'
export { readManifest, hashFile, MANIFEST_FILE, REPORT_FILE } from './manifest.js'
export type { Manifest, ManifestInput, ManifestShard } from './manifest.js'
export { mineNegatives, toolVersion, subsetName, AUTO_EXACT_MAX_FLOP } from './mine.js'
export type { MineOptions, MineResult, ProgressEvent } from './mine.js'
export { buildReportData, renderReport, writeReport } from './report.js'
export type {
  ReportOptions, ReportProgressEvent, ReportData, GroupReport, GroupScan, SampleRow, ShardLayout, Histogram, ReportThumbnail, WriteReportResult,
} from './report.js'
export { validateDataset, validateShards, formatReport, mergeReports, reportFails, countBySeverity, CHECKS } from './validate.js'
export type {
  ValidateDatasetOptions, ValidateShardsOptions, ValidateCommonOptions, ValidationReport, Finding, FindingCode, Severity,
  CheckGroup, CheckResult, CheckSpec, FormatReportOptions, ReportFormat,
} from './validate.js'
