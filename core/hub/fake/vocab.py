"""Static vocabulary the synthetic corpus is drawn from.

Everything here is plain data: topic words that recur in repo names, card texts
and paper titles (so keyword and semantic search have real signal), the
well-known authors a crawler will meet, model families with their sizes and
tags, licenses, pipelines, languages. Tables are tuples so that a corpus column
can hold a small integer index into them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    word: str  # used in repo names ("medical", "coder")
    tag: str | None  # a tag models and datasets of this topic carry
    phrase: str  # a noun phrase for card texts and titles
    task: str  # what the data or model is for, as an English verb phrase
    pipeline: str  # the most likely pipeline tag for a model of this topic
    dataset_task: str  # the `task_categories:` value of a dataset of this topic


TOPICS: tuple[Topic, ...] = (
    Topic("chat", "chat", "open-domain conversations", "hold helpful multi-turn conversations",
          "text-generation", "text-generation"),
    Topic("instruct", None, "instruction-following demonstrations", "follow natural language instructions",
          "text-generation", "text-generation"),
    Topic("coder", "code", "source code and programming problems", "write, explain and debug code",
          "text-generation", "text-generation"),
    Topic("math", "math", "grade-school and competition mathematics problems",
          "solve math word problems step by step", "text-generation", "question-answering"),
    Topic("medical", "medical", "clinical notes and biomedical literature",
          "answer medical questions and summarize clinical notes", "text-generation", "question-answering"),
    Topic("legal", "legal", "court decisions, contracts and statutes", "analyze legal documents and contracts",
          "text-generation", "text-classification"),
    Topic("finance", "finance", "financial news, filings and earnings calls",
          "analyze financial reports and market sentiment", "text-classification", "text-classification"),
    Topic("vision", "vision", "natural images with object annotations", "recognize objects in photographs",
          "image-classification", "image-classification"),
    Topic("speech", "speech", "transcribed speech recordings", "transcribe spoken audio into text",
          "automatic-speech-recognition", "automatic-speech-recognition"),
    Topic("translation", "translation", "parallel sentences in many languages",
          "translate text between languages", "translation", "translation"),
    Topic("embedding", "embeddings", "sentence pairs for semantic similarity",
          "embed sentences for semantic search and retrieval", "sentence-similarity", "sentence-similarity"),
    Topic("summarization", "summarization", "news articles paired with summaries",
          "summarize long documents", "summarization", "summarization"),
    Topic("roleplay", "roleplay", "character dialogues and creative fiction",
          "write stories and play characters", "text-generation", "text-generation"),
    Topic("reasoning", "reasoning", "chain-of-thought reasoning traces",
          "reason through hard problems before answering", "text-generation", "text-generation"),
    Topic("agent", "agent", "tool-use and function-calling trajectories", "call tools and act as an agent",
          "text-generation", "text-generation"),
    Topic("sentiment", "sentiment-analysis", "product reviews labelled with sentiment",
          "classify the sentiment of reviews", "text-classification", "text-classification"),
    Topic("ner", "ner", "sentences annotated with named entities", "recognize named entities in text",
          "token-classification", "token-classification"),
    Topic("qa", "question-answering", "questions paired with supporting passages",
          "answer questions from a context passage", "question-answering", "question-answering"),
    Topic("image", "art", "text prompts paired with generated images", "generate images from text prompts",
          "text-to-image", "text-to-image"),
    Topic("tts", "tts", "studio-quality voice recordings", "synthesize natural speech from text",
          "text-to-speech", "text-to-speech"),
    Topic("ocr", "ocr", "scanned documents and receipts", "read text from scanned documents",
          "image-to-text", "image-to-text"),
    Topic("multimodal", "multimodal", "images paired with questions and answers",
          "answer questions about images", "image-text-to-text", "visual-question-answering"),
    Topic("safety", "safety", "prompts labelled for harmful content", "detect harmful or unsafe content",
          "text-classification", "text-classification"),
    Topic("retrieval", "retrieval", "queries with relevant and irrelevant passages",
          "rank passages for a search query", "feature-extraction", "sentence-similarity"),
    Topic("video", "video", "short video clips with captions", "generate and describe short videos",
          "text-to-video", "text-to-video"),
    Topic("music", "music", "music clips with genre labels", "generate and tag music", "text-to-audio",
          "audio-classification"),
    Topic("chemistry", "chemistry", "molecules and reaction descriptions",
          "predict molecular properties", "text-generation", "text-generation"),
    Topic("education", "education", "textbook passages and exam questions", "tutor students across subjects",
          "text-generation", "question-answering"),
)


@dataclass(frozen=True)
class Family:
    name: str  # display stem used in names ("Llama-3.1", "Qwen2.5")
    model_type: str  # the architecture tag ("llama", "qwen2")
    library: str  # the usual library of an original checkpoint
    pipeline: str  # the usual pipeline
    sizes: tuple[int, ...]  # indices into SIZES
    org: str | None  # the author of the original checkpoints
    arch: str  # config.architectures[0]


SIZES: tuple[tuple[str, int], ...] = (
    ("135M", 134_515_008), ("360M", 361_821_120), ("0.5B", 494_032_768), ("1B", 1_235_814_400),
    ("1.5B", 1_543_714_304), ("2B", 2_614_341_888), ("3B", 3_212_749_824), ("4B", 4_022_468_096),
    ("7B", 7_615_616_512), ("8B", 8_030_261_248), ("9B", 9_241_705_984), ("12B", 12_247_782_400),
    ("14B", 14_770_033_664), ("22B", 22_247_282_688), ("27B", 27_227_128_320), ("32B", 32_763_876_352),
    ("70B", 70_553_706_496), ("110M", 109_482_240), ("335M", 335_141_888), ("22M", 22_713_216),
    ("86M", 86_389_248), ("800M", 809_238_528), ("1.3B", 1_315_577_856),
)

FAMILIES: tuple[Family, ...] = (
    Family("Llama-3.1", "llama", "transformers", "text-generation", (9, 16), "meta-llama", "LlamaForCausalLM"),
    Family("Llama-3.2", "llama", "transformers", "text-generation", (3, 6), "meta-llama", "LlamaForCausalLM"),
    Family("Mistral", "mistral", "transformers", "text-generation", (8, 11, 13), "mistralai",
           "MistralForCausalLM"),
    Family("Qwen2.5", "qwen2", "transformers", "text-generation", (2, 4, 6, 8, 12, 15, 16), "Qwen",
           "Qwen2ForCausalLM"),
    Family("Qwen3", "qwen3", "transformers", "text-generation", (2, 4, 7, 9, 12, 15), "Qwen",
           "Qwen3ForCausalLM"),
    Family("gemma-2", "gemma2", "transformers", "text-generation", (5, 10, 14), "google", "Gemma2ForCausalLM"),
    Family("gemma-3", "gemma3", "transformers", "image-text-to-text", (3, 7, 11, 14), "google",
           "Gemma3ForConditionalGeneration"),
    Family("Phi-3.5", "phi3", "transformers", "text-generation", (6, 12), "microsoft", "Phi3ForCausalLM"),
    Family("SmolLM2", "llama", "transformers", "text-generation", (0, 1, 4), "HuggingFaceTB",
           "LlamaForCausalLM"),
    Family("DeepSeek-R1-Distill", "qwen2", "transformers", "text-generation", (4, 8, 12, 15), "deepseek-ai",
           "Qwen2ForCausalLM"),
    Family("Nemotron", "nemotron", "transformers", "text-generation", (9, 16), "nvidia", "NemotronForCausalLM"),
    Family("bert-base", "bert", "transformers", "fill-mask", (17,), "google-bert", "BertForMaskedLM"),
    Family("roberta-large", "roberta", "transformers", "fill-mask", (18,), "FacebookAI", "RobertaForMaskedLM"),
    Family("MiniLM-L6", "bert", "sentence-transformers", "sentence-similarity", (19,), "sentence-transformers",
           "BertModel"),
    Family("bge-base", "bert", "sentence-transformers", "feature-extraction", (17,), "BAAI", "BertModel"),
    Family("t5-base", "t5", "transformers", "text2text-generation", (17,), "google-t5",
           "T5ForConditionalGeneration"),
    Family("whisper-large-v3", "whisper", "transformers", "automatic-speech-recognition", (21,), "openai",
           "WhisperForConditionalGeneration"),
    Family("vit-base", "vit", "transformers", "image-classification", (20,), "google",
           "ViTForImageClassification"),
    Family("stable-diffusion-xl", "stable-diffusion-xl", "diffusers", "text-to-image", (), "stabilityai",
           "StableDiffusionXLPipeline"),
    Family("FLUX.1", "flux", "diffusers", "text-to-image", (11,), "black-forest-labs", "FluxPipeline"),
)
LLM_FAMILIES = tuple(i for i, f in enumerate(FAMILIES) if f.pipeline in ("text-generation", "image-text-to-text"))

VARIANTS: tuple[str, ...] = ("Instruct", "Chat", "Base", "it", "v0.1", "v2", "preview", "")

# (author, kind weights: models, datasets, spaces) — share of each kind's items, before the long tail.
KNOWN_AUTHORS: tuple[tuple[str, float, float, float], ...] = (
    ("mradermacher", 0.012, 0.0, 0.0), ("bartowski", 0.004, 0.0, 0.0), ("TheBloke", 0.002, 0.0, 0.0),
    ("RichardErkhov", 0.005, 0.0, 0.0), ("mlx-community", 0.004, 0.0, 0.0), ("unsloth", 0.002, 0.0003, 0.0),
    ("DavidAU", 0.0015, 0.0, 0.0002), ("QuantFactory", 0.002, 0.0, 0.0), ("lmstudio-community", 0.0005, 0.0, 0.0),
    ("Nymbo", 0.0003, 0.0005, 0.004), ("meta-llama", 0.00005, 0.00002, 0.0001),
    ("mistralai", 0.00005, 0.0, 0.00005), ("Qwen", 0.0002, 0.0001, 0.0002), ("google", 0.0003, 0.0002, 0.0002),
    ("microsoft", 0.0003, 0.0003, 0.0002), ("nvidia", 0.0003, 0.0004, 0.0001),
    ("HuggingFaceTB", 0.00005, 0.0001, 0.0001), ("deepseek-ai", 0.00005, 0.0, 0.00002),
    ("stabilityai", 0.00005, 0.0, 0.0001), ("black-forest-labs", 0.00002, 0.0, 0.00005),
    ("sentence-transformers", 0.0001, 0.0002, 0.0), ("BAAI", 0.0001, 0.0001, 0.0),
    ("openai", 0.00003, 0.00002, 0.0), ("google-bert", 0.00002, 0.0, 0.0), ("FacebookAI", 0.00002, 0.0, 0.0),
    ("google-t5", 0.00001, 0.0, 0.0), ("HuggingFaceH4", 0.00003, 0.0002, 0.0002),
    ("allenai", 0.0001, 0.0005, 0.0001), ("open-llm-leaderboard", 0.0, 0.004, 0.0),
    ("huggingface", 0.0, 0.0002, 0.0003), ("gradio", 0.0, 0.0, 0.001), ("multimodalart", 0.0, 0.0, 0.0005),
    ("akhaliq", 0.0, 0.0, 0.001), ("hysts", 0.0, 0.0, 0.0005), ("ginipick", 0.0, 0.0, 0.0008),
)
# Originals of a family are authored by its org; these only quantize.
QUANTIZERS: tuple[str, ...] = (
    "mradermacher", "bartowski", "TheBloke", "RichardErkhov", "QuantFactory", "lmstudio-community",
    "mlx-community", "unsloth",
)

FIRST_NAMES: tuple[str, ...] = (
    "Wei", "Jing", "Alex", "Maria", "Ahmed", "Priya", "Lukas", "Sofia", "Kenji", "Aisha", "Daniel", "Chen",
    "Olga", "Rahul", "Fatima", "Hugo", "Yuki", "Mateo", "Amara", "Ivan", "Sara", "Omar", "Lena", "Minh",
    "Arjun", "Elena", "Tomas", "Hana", "Diego", "Nadia", "Jonas", "Mei", "Kwame", "Ines", "Pavel", "Zara",
    "Leo", "Noor", "Felix", "Ana", "Ravi", "Julia", "Samuel", "Li", "Marta", "Yusuf", "Clara", "Hiro",
)
LAST_NAMES: tuple[str, ...] = (
    "Zhang", "Wang", "Smith", "Garcia", "Kumar", "Müller", "Rossi", "Tanaka", "Kim", "Nguyen", "Ivanova",
    "Okafor", "Silva", "Cohen", "Dubois", "Novak", "Hassan", "Larsen", "Patel", "Chen", "Liu", "Martin",
    "Schmidt", "Moreau", "Sato", "Park", "Lopez", "Ali", "Berg", "Costa", "Yamamoto", "Fischer", "Haddad",
    "Kowalski", "Andersson", "Reyes", "Singh", "Huang", "Wu", "Yilmaz", "Novikov", "Mensah", "Ortiz",
)
HANDLE_PARTS: tuple[str, ...] = (
    "neo", "dark", "tiny", "deep", "quant", "byte", "pixel", "lunar", "nova", "zen", "hyper", "alpha", "omega",
    "atlas", "echo", "nimbus", "vortex", "cobalt", "ember", "sage", "orbit", "vector", "kernel", "tensor",
    "lambda", "sigma", "delta", "cipher", "quantum", "astro", "crimson", "silver", "iron", "swift", "fox",
    "wolf", "owl", "panda", "tiger", "raven", "lab", "ai", "ml", "dev", "research", "studio", "works",
)

LICENSES: tuple[str, ...] = (
    "apache-2.0", "mit", "llama3.1", "llama3.2", "gemma", "cc-by-4.0", "cc-by-nc-4.0", "other",
    "openrail", "creativeml-openrail-m", "cc-by-sa-4.0", "gpl-3.0", "bsd-3-clause", "qwen", "openrail++",
)
LANGUAGES: tuple[str, ...] = (
    "en", "zh", "multilingual", "fr", "de", "es", "ja", "ko", "ru", "ar", "pt", "it", "vi", "hi", "tr",
)
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English", "zh": "Chinese", "multilingual": "many languages", "fr": "French", "de": "German",
    "es": "Spanish", "ja": "Japanese", "ko": "Korean", "ru": "Russian", "ar": "Arabic", "pt": "Portuguese",
    "it": "Italian", "vi": "Vietnamese", "hi": "Hindi", "tr": "Turkish",
}

PIPELINES: tuple[str, ...] = (
    "text-generation", "text-classification", "token-classification", "question-answering", "fill-mask",
    "summarization", "translation", "text2text-generation", "sentence-similarity", "feature-extraction",
    "automatic-speech-recognition", "text-to-speech", "image-classification", "object-detection",
    "text-to-image", "image-to-text", "image-text-to-text", "text-to-video", "text-to-audio",
    "reinforcement-learning", "visual-question-answering", "audio-classification",
)

# Library index -> (library_name, tags it contributes).
LIBRARIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("transformers", ("transformers", "safetensors")),
    ("transformers", ("transformers", "pytorch", "safetensors")),
    ("gguf", ()),  # GGUF repos: the `gguf` tag comes with the quantization
    ("diffusers", ("diffusers", "safetensors")),
    ("peft", ("peft", "safetensors")),
    ("sentence-transformers", ("sentence-transformers", "safetensors")),
    ("mlx", ("mlx", "safetensors")),
    ("timm", ("timm", "pytorch", "safetensors")),
    ("stable-baselines3", ("stable-baselines3",)),
    ("ml-agents", ("ml-agents", "onnx")),
    ("keras", ("keras",)),
)
LIB = {name: i for i, (name, _) in reversed(list(enumerate(LIBRARIES)))}

# Quantization index -> (name suffix, tags). Index 0 is "not quantized".
QUANTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("", ()),
    ("GGUF", ("gguf", "imatrix")),
    ("AWQ", ("4-bit", "awq")),
    ("GPTQ", ("4-bit", "gptq")),
    ("exl2", ("exl2",)),
    ("MLX-4bit", ("4-bit",)),
    ("GGUF", ("gguf",)),
    ("bnb-4bit", ("4-bit", "bitsandbytes")),
    ("FP8", ("fp8", "compressed-tensors")),
)

# Role of a model relative to its base: index into this tuple; 0 = an original checkpoint.
ROLES: tuple[str, ...] = ("original", "finetune", "adapter", "merge", "quantized")
ROLE_TAGS: tuple[tuple[str, ...], ...] = ((), ("trl", "sft"), ("lora",), ("mergekit", "merge"), ())

# Model flag bits (a bit set means the item carries the tag).
FLAG_TAGS: tuple[str, ...] = (
    "model-index", "unsloth", "conversational", "text-generation-inference", "autotrain_compatible",
    "endpoints_compatible",
)

SPACE_SDKS: tuple[str, ...] = ("gradio", "streamlit", "docker", "static")
SPACE_SDK_VERSIONS: dict[str, str] = {"gradio": "5.49.1", "streamlit": "1.50.0"}
SPACE_THINGS: tuple[str, ...] = (
    "demo", "playground", "chatbot", "arena", "leaderboard", "explorer", "generator", "studio", "assistant",
    "app", "space", "webui", "viewer", "tool", "dashboard",
)
SPACE_EMOJIS: tuple[str, ...] = ("🚀", "🤗", "🔥", "🎨", "🧠", "💬", "📚", "🎵", "🖼️", "⚡", "🦙", "🐳", "🌍", "🔬")
COLORS: tuple[str, ...] = ("red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray")
SPACE_STAGES: tuple[str, ...] = ("RUNNING", "SLEEPING", "RUNTIME_ERROR", "BUILD_ERROR", "PAUSED", "STOPPED")
SPACE_HARDWARE: tuple[str, ...] = ("cpu-basic", "zero-a10g", "t4-small", "a10g-small", "cpu-upgrade")

DATASET_SIZE_CATEGORIES: tuple[str, ...] = (
    "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
)
DATASET_FORMATS: tuple[str, ...] = ("parquet", "json", "csv", "imagefolder", "audiofolder", "webdataset", "text")
DATASET_MODALITIES: tuple[str, ...] = ("text", "image", "audio", "video", "tabular")
DATASET_SHAPES: tuple[str, ...] = (
    "corpus", "dataset", "benchmark", "instructions", "preferences", "pairs", "eval", "sft", "dpo", "collection",
)
ADJECTIVES: tuple[str, ...] = (
    "open", "tiny", "large", "clean", "synthetic", "curated", "multilingual", "high-quality", "uncensored",
    "dark", "bright", "fast", "compact", "robust", "distilled", "deep", "hybrid", "smart", "lite", "pro",
)
PAPER_METHODS: tuple[str, ...] = (
    "Sparse Mixture-of-Experts", "Direct Preference Optimization", "Retrieval-Augmented Generation",
    "Speculative Decoding", "Low-Rank Adaptation", "Diffusion Transformers", "State Space Models",
    "Reinforcement Learning from Verifiable Rewards", "Chain-of-Thought Distillation", "Contrastive Pretraining",
    "Test-Time Scaling", "Quantization-Aware Training", "Linear Attention", "Self-Play Fine-Tuning",
    "Flow Matching", "Vision-Language Alignment", "Process Reward Models", "Long-Context Extrapolation",
)
PAPER_CLAIMS: tuple[str, ...] = (
    "improves accuracy while reducing inference cost",
    "matches larger models with a fraction of the compute",
    "generalizes to unseen tasks without additional supervision",
    "scales predictably with model size and data",
    "reduces hallucinations on knowledge-intensive benchmarks",
    "enables efficient deployment on consumer hardware",
)
