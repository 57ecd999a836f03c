import { describe, it, expect } from 'vitest';
import { processingScope, type ProcessingFacts } from '../../src/pricing/index.js';

describe('processingScope: where a call was served, from what its span carries', () => {
  it.each<[string, ProcessingFacts, 'global' | 'regional' | undefined]>([
    // Anthropic usage.inference_geo
    ['inference_geo us', { provider: 'anthropic', rawModel: 'claude-opus-4-6', inferenceGeo: 'us' }, 'regional'],
    ['inference_geo global', { provider: 'anthropic', rawModel: 'claude-opus-4-6', inferenceGeo: 'global' }, 'global'],
    ['inference_geo wins over the host', { provider: 'anthropic', rawModel: 'claude-opus-4-6', inferenceGeo: 'GLOBAL', serverAddress: 'us-east5-aiplatform.googleapis.com' }, 'global'],
    // AWS Bedrock model ids
    ['Bedrock global profile', { provider: 'aws.bedrock', rawModel: 'global.anthropic.claude-sonnet-4-5-20250929-v1:0' }, 'global'],
    ['Bedrock US geo profile', { provider: 'aws.bedrock', rawModel: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0' }, 'regional'],
    ['Bedrock EU geo profile', { provider: 'aws.bedrock', rawModel: 'eu.anthropic.claude-haiku-4-5-20251001-v1:0' }, 'regional'],
    ['Bedrock APAC geo profile', { provider: 'aws.bedrock', rawModel: 'apac.anthropic.claude-opus-4-5-20251101-v1:0' }, 'regional'],
    ['Bedrock in-region model id', { provider: 'aws.bedrock', rawModel: 'anthropic.claude-haiku-4-5-20251001-v1:0' }, 'regional'],
    ['Bedrock inference-profile ARN (global)', { rawModel: 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0' }, 'global'],
    ['Bedrock inference-profile ARN (us)', { rawModel: 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0' }, 'regional'],
    ['Bedrock foundation-model ARN (in-region)', { rawModel: 'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0' }, 'regional'],
    ['a us. prefix is not a Bedrock profile outside Bedrock', { provider: 'openai', rawModel: 'us.gpt-5.5' }, undefined],
    // OpenAI data-residency hosts
    ['OpenAI US data residency', { provider: 'openai', rawModel: 'gpt-5.5', serverAddress: 'us.api.openai.com' }, 'regional'],
    ['OpenAI EU data residency', { provider: 'openai', rawModel: 'gpt-5.5', serverAddress: 'EU.api.openai.com' }, 'regional'],
    ['OpenAI JP data residency, no provider named', { rawModel: 'gpt-5.5', serverAddress: 'jp.api.openai.com' }, 'regional'],
    ['OpenAI global host', { provider: 'openai', rawModel: 'gpt-5.5', serverAddress: 'api.openai.com' }, 'global'],
    ['a look-alike host is not OpenAI data residency', { provider: 'openai', rawModel: 'gpt-5.5', serverAddress: 'us.api.openai.com.example.net' }, undefined],
    ['an OpenAI-compatible server on another host', { provider: 'openai', rawModel: 'gpt-5.5', serverAddress: 'localhost' }, undefined],
    // Vertex AI hosts
    ['Vertex regional endpoint', { provider: 'gcp.vertex_ai', rawModel: 'claude-sonnet-4-5@20250929', serverAddress: 'us-east5-aiplatform.googleapis.com' }, 'regional'],
    ['Vertex multi-region endpoint', { provider: 'gcp.vertex_ai', rawModel: 'claude-sonnet-4-5@20250929', serverAddress: 'us-aiplatform.googleapis.com' }, 'regional'],
    ['Vertex global endpoint', { provider: 'gcp.vertex_ai', rawModel: 'claude-sonnet-4-5@20250929', serverAddress: 'aiplatform.googleapis.com' }, 'global'],
    // Nothing said
    ['no facts', { provider: 'anthropic', rawModel: 'claude-opus-4-6' }, undefined],
    ['blank facts', { provider: ' ', rawModel: ' ', serverAddress: ' ', inferenceGeo: ' ' }, undefined],
  ])('%s', (_name, facts, expected) => {
    expect(processingScope(facts)).toBe(expected);
  });
});
