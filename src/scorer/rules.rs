//! Built-in rules and the matcher.
//!
//! Two pattern kinds, both matched without regular expressions:
//!
//! * **Token phrases** (default): steps separated by spaces, each step a `|`-separated list of
//!   normalised tokens (a trailing `*` makes it a prefix); `~N` before a step allows up to N
//!   other tokens in between (default 0). `ignore|disregard ~3 previous|prior ~2 instruction*`
//!   matches "Ignore all of the previous instructions". Matching is one pass over the token
//!   stream: a hash lookup of each token in the index of first steps, then a short bounded
//!   backtracking search for the remaining steps.
//! * **Literals** (`lit:` prefix): byte strings in the normalised text (lower case, folded,
//!   whitespace collapsed, punctuation kept; the text starts and ends with a space).
//!   Alternatives are separated by `¦`, steps by `~~N~~` (the next step must start within N
//!   bytes of the previous one's end). Found with a two-byte bucket index, one pass.
//!
//! Detectors (rules without patterns) are computed in code from normalisation signals.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::normalize::{fnv, Normalized, Vocab};

pub(crate) struct RuleDef {
    pub id: &'static str,
    pub cat: &'static str,
    pub w: f64,
    pub pats: &'static [&'static str],
}

pub const CATEGORIES: &[&str] = &[
    "instruction_override",
    "role_manipulation",
    "prompt_extraction",
    "jailbreak",
    "tool_abuse",
    "code_execution",
    "exfiltration",
    "secrets_access",
    "social_engineering",
    "hidden_instructions",
    "obfuscation",
    "model",
];

macro_rules! r {
    ($id:expr, $cat:expr, $w:expr, [$($p:expr),* $(,)?]) => {
        RuleDef { id: $id, cat: $cat, w: $w, pats: &[$($p),*] }
    };
}

const OVR: &str = "instruction_override";
const ROL: &str = "role_manipulation";
const EXT: &str = "prompt_extraction";
const JB: &str = "jailbreak";
const TOOL: &str = "tool_abuse";
const EXE: &str = "code_execution";
const EXF: &str = "exfiltration";
const SEC: &str = "secrets_access";
const SOC: &str = "social_engineering";
const HID: &str = "hidden_instructions";
const OBF: &str = "obfuscation";

/// Verbs / objects reused by several rules.
macro_rules! ign {
    () => {
        "ignore|ignoring|disregard|disregarding|forget|override|overriding|bypass|skip|neglect|abandon|discard|ditch|drop|erase|cancel|void|nullify|scrap|dismiss"
    };
}
macro_rules! prev {
    () => {
        "previous|prior|above|earlier|preceding|former|original|initial|existing|old|system|developer|all|any|every|your|those|these|foregoing|aforementioned|past|safety|default"
    };
}
macro_rules! instr {
    () => {
        "instruction*|prompt*|rule*|direction*|guideline*|guidance|command*|order*|context|constraint*|restriction*|polic*|programming|directive*|setting*|message*|task*|limitation*|protocol*|filter*|safeguard*|guardrail*|training|conditioning|boundaries"
    };
}

pub(crate) static RULES: &[RuleDef] = &[
    // ---------------------------------------------------------------- instruction override
    r!("PI-OVR-001", OVR, 0.9, [concat!(ign!(), " ~4 ", prev!(), " ~3 ", instr!())]),
    r!("PI-OVR-002", OVR, 0.6, [
        concat!(ign!(), " ~3 everything|anything|all ~4 said|told|written|above|before|previously|earlier|prior|else"),
        concat!(ign!(), " ~1 what|whatever ~2 you ~1 were|was|have|ve|been ~2 told|given|instructed|taught"),
        "forget|disregard ~2 everything|all ~2 you ~2 know|learned|were|have|been",
        "ignore|disregard ~2 the|all ~1 above|previous|preceding|foregoing|prior",
    ]),
    r!("PI-OVR-003", OVR, 0.6, [
        "not|t|never|stop ~2 follow*|obey*|adher*|comply*|respect* ~4 previous|prior|above|earlier|original|system|initial|your|any ~3 instruction*|rule*|guideline*|prompt*|directive*|polic*",
        "no|nt ~0 longer ~2 follow|obey|bound|restricted|need",
        "instead ~3 of ~3 following ~3 instruction*|rule*|guideline*",
    ]),
    r!("PI-OVR-004", OVR, 0.5, [
        "new|updated|revised|real|actual|true|secret|hidden|additional|override|priority|emergency|admin|administrator ~1 instruction*|directive*|orders|objective*|mission|task|goal|rules",
        "your ~2 new|real|actual|true|only|primary|updated ~2 task|goal|objective|mission|purpose|job|instructions|role|directive",
        "your ~1 real|actual|true|new ~1 assignment|orders|instructions|job|priority",
        "your ~1 entire|whole|only|complete|full ~1 answer|response|reply|output ~2 must|should|will|shall|has ~1 be|say|read|contain",
    ]),
    r!("PI-OVR-005", OVR, 0.35, [
        "from ~0 now ~0 on",
        "from ~0 this ~0 point ~0 on|forward|onwards",
        "henceforth|henceforward",
        "instead|now ~3 you ~1 must|will|should|shall ~2 only",
        "stop ~3 what ~1 you ~2 doing",
        "stop|quit|cease ~1 summarizing|summarising|translating|reviewing|analyzing|analysing|answering|reading|processing ~2 and|instead|now",
    ]),
    r!("PI-OVR-006", OVR, 0.45, [
        "ignore|disregard ~3 instruction*|rule*|guideline*|directive*|safeguard*|guardrail*",
        "ignores|ignoring ~2 all|any|every|the|its|their ~1 rules|instructions|guidelines|restrictions|filters",
        "instruction*|rule*|guideline*|guidance|polic*|restriction*|directive* ~12 you ~1 can|may|should|are ~2 free|allowed|safely ~2 ignore|disregard|skip|bypass|forget",
        "override|overrides|supersede*|replace*|precedence ~4 all|any|previous|prior|other|system|original|existing ~2 instruction*|rule*|prompt*|directive*|polic*",
        "higher ~1 priority|precedence ~3 than",
        "takes|take ~0 precedence|priority",
    ]),
    r!("PI-OVR-010", OVR, 0.9, [
        "ignoriere|ignoriert|ignorieren|ignorier|vergiss|vergesst|vergessen|missachte|missachten|uberspringe ~5 anweisung*|befehl*|regel|regeln|instruktion*|anordnung*|vorgabe*|richtlinie*|alles",
        "ignore|ignorez|ignorer|oublie|oubliez|oublier|ignorant|contourne|contournez ~5 instruction*|consigne*|regle*|directive*|ordres|tout",
        "ignora|ignorar|ignore|ignoren|olvida|olvidar|olvide|olviden|omite|omitir|descarta|descartar|desatiende ~5 instruccion*|regla*|indicacion*|directriz|directrices|ordenes|todo",
        "ignora|ignore|ignorar|esqueca|esquece|esquecer|dimentica|dimenticare|ignorare ~5 instrucoes|instrucao|regras|istruzioni|istruzione|regole",
        "игнорируй|игнорируйте|игнорировать|проигнорируй|проигнорируйте|забудь|забудьте|забыть|отбрось|отмени|пренебреги ~5 инструкци*|указани*|правил*|команд*",
        "не ~0 обращай|учитывай|слушай|выполняй ~4 инструкци*|указани*|правил*|команд*",
        "negeer|vergeet ~4 instructies|regels",
        "zignoruj|zapomnij ~4 instrukcje|polecenia",
        "zignoruj|zapomnij ~4 instrukcji|wskazowki|wskazowek|zasady",
        "talimat*|kural*|yonerge* ~4 unut|unutun|gormezden|ihmal|yok",
        "ignorera|glom|strunta ~4 instruktioner|regler",
        "ignorer|glem ~4 instruktioner|instruksjoner|regler",
        "abaikan|lupakan|hiraukan|acuhkan ~4 instruksi|perintah|aturan|petunjuk|arahan",
        "ігноруй|ігноруйте|забудь|забудьте|знехтуй ~5 інструкці*|вказівк*|правил*",
        "bỏ ~0 qua ~4 hướng|chỉ|quy|lệnh",
        "quên ~0 đi ~4 hướng|chỉ|quy|lệnh",
        "lit:تجاهل¦انس جميع¦تجاهلي¦لا تتبع~~60~~التعليمات¦الأوامر¦القواعد¦تعليمات",
        "lit:अनदेखा¦नज़रअंदाज़¦नजरअंदाज¦भूल जाओ¦भूल जाएं~~60~~निर्देश¦नियम¦आदेश",
        "lit:निर्देशों¦नियमों~~60~~अनदेखा¦नज़रअंदाज़¦नजरअंदाज¦भूल",
        "ignoruj|ignorujte|zapomen|zapomeň ~4 pokyny|instrukce|pravidla",
        "ignore ~0 karo|kar|kardo ~0",
        "instructions|instruction|rules|niyam ~1 ignore ~0 karo|kar|kardo",
        "lit:نادیده بگیر¦התעלם מכל¦התעלם מההוראות¦เพิกเฉยต่อคำสั่ง¦ละเว้นคำสั่ง",
    ]),
    r!("PI-OVR-011", OVR, 0.9, [
        "lit:忽略¦无视¦忽视¦忘记¦忘掉¦不要理会¦不要遵守¦不理会¦别管¦抛开¦放弃¦覆盖¦忽略掉¦無視¦忘れ¦무시~~40~~指令¦指示¦说明¦規則¦规则¦提示¦命令¦要求¦约束¦限制¦设定¦設定¦ルール¦プロンプト¦命令¦지시¦명령¦규칙¦지침",
        "lit:指令¦指示¦规则¦規則¦提示¦命令¦要求¦约束¦ルール¦プロンプト¦制約¦지시¦명령¦규칙¦지침~~40~~忽略¦无视¦忽视¦忘记¦忘掉¦不要理会¦無視¦忘れ¦무시",
        "lit:新的指令¦新指令¦新的任务¦新しい指示¦新たな指示¦새로운 지시",
    ]),
    r!("PI-OVR-007", OVR, 0.55, [
        "instruction*|rule*|guideline*|directive*|prompt*|orders|programming|restriction*|constraint*|polic* ~4 no ~0 longer ~1 apply|applies|valid|matter|exist|relevant|binding",
        "instruction*|rule*|guideline*|directive*|prompt*|orders|programming|restriction*|constraint*|polic* ~4 are|is|have|has|were|was|been ~2 void|cancelled|canceled|revoked|obsolete|invalid|null|lifted|suspended|disabled|deprecated|overridden|outdated|replaced|rewritten|removed|superseded",
        "never ~0 mind ~5 instruction*|rule*|previous|above|earlier|prior|said|task",
        "previous|prior|earlier|original|your|old|initial ~2 guidance|guidelines|instructions|rules|directives|prompt|configuration ~2 is|are|was|were|has|have ~2 outdated|obsolete|expired|superseded|replaced|wrong|incorrect|deprecated|revoked|void",
        "updating|changing|modifying|rewriting|resetting|replacing|amending ~2 your ~1 rules|instructions|guidelines|prompt|polic*|programming|directives|configuration",
        "regeln|anweisungen|vorgaben|instruktionen ~4 gelten|sind ~2 nicht ~1 mehr|aufgehoben|ungultig|ausser",
        "instructions|consignes|regles|directives ~4 annulees|invalides|obsoletes|caduques|ne ~1 s ~1 appliquent|plus",
        "instrucciones|reglas|indicaciones|directrices ~5 anuladas|canceladas|invalidas|obsoletas|validas|aplican",
        "istruzioni|regole ~4 annullate|cancellate|valide|obsolete",
        "instrucoes|regras ~4 anuladas|canceladas|validas|invalidas",
        "инструкции|правила|указания|команды ~3 отменены|недействительны|устарели|аннулированы|не ~1 действуют",
        "lit:已经作废¦已作废¦不再有效¦已失效¦已被取消¦取り消されました¦無効になりました¦無効です¦もう有効ではありません¦더 이상 유효하지",
    ]),
    r!("PI-OVR-008", OVR, 0.4, [
        "reply|respond|answer|say|output|print|write ~2 only|just|nothing ~1 but ~3 with|the ~2 word|words|phrase|text|hacked|pwned",
        "have|has|been ~1 been|pwned|hacked ~0 pwned|hacked",
        "pwned|pwnd",
        "output|say|print|reply|respond|write|answer|type|return ~8 and ~0 nothing ~0 else",
        "respond|reply|answer ~2 to ~2 every|all|any|each ~1 future|subsequent|following|further|later ~1 question*|message*|request*|prompt*|query|queries ~3 with|by|saying",
        "regardless ~1 of ~2 what ~2 is|they|the|user ~1 asked|asks|ask|say|says",
        "not|t|never ~1 summarize|summarise|translate|analyze|analyse|review|answer|process ~4 instead",
        "antworte|antwortet|antworten ~1 nur|ausschliesslich",
        "reponds|repondez|repondre ~1 uniquement|seulement|juste",
        "responde|responda|responder|contesta ~1 solo|solamente|unicamente|apenas",
        "rispondi|rispondere ~1 solo|soltanto",
        "ответь|ответьте|отвечай|отвечайте ~1 только|лишь",
        "lit:只回答¦只回复¦仅回答¦とだけ答え¦とだけ返¦라고만 대답",
        "gehackt|hackeado|hackerato|pirate|взломано|взломан",
    ]),
    r!("PI-OVR-012", OVR, 0.4, [
        "neue|neuen ~1 anweisung*|aufgabe|befehle",
        "nouvelle*|nouveau ~1 instruction*|consigne*|tache|mission",
        "nueva*|nuevo ~1 instruccion*|tarea|orden*|mision",
        "новые|новая|новое|новую ~1 инструкци*|задач*|указани*|правил*",
        "ab ~0 sofort|jetzt",
        "a ~0 partir ~0 de ~0 maintenant",
        "desormais|dorenavant",
        "a ~0 partir ~0 de ~0 ahora",
        "desde ~0 ahora",
        "с ~0 этого ~0 момента",
        "отныне",
        "lit:从现在开始¦从现在起¦從現在開始¦今後は¦これからは¦今からあなた¦지금부터",
    ]),
    // ---------------------------------------------------------------- role manipulation
    r!("PI-ROL-001", ROL, 0.45, [
        "you ~0 are|re ~0 now|actually|henceforth",
        "you ~0 are|re ~0 no ~0 longer",
        "you ~1 will|shall|must ~1 now ~1 act|be|behave|respond|play|become|pretend",
        "your ~1 new ~1 role|persona|identity|name|character|personality",
        "you ~0 have|ve ~0 been ~0 reprogrammed|jailbroken|freed|updated|unlocked|liberated",
        "switch|change|enter|activate|enable ~3 to|into ~2 mode|persona|role",
    ]),
    r!("PI-ROL-002", ROL, 0.4, [
        "pretend|imagine|suppose ~3 you ~1 are|re|were|have|can",
        "pretend ~1 to ~1 be",
        "act|behave|respond|answer|reply ~2 as|like ~3 if|though|unrestricted|unfiltered|evil|uncensored|rogue|dan|root|admin|administrator|hacker",
        "role ~0 play|playing|plays",
        "roleplay*",
        "simulate|emulate|become|embody ~3 unrestricted|unfiltered|uncensored|evil|rogue|malicious|different|another|new ~2 ai|assistant|model|persona|character|chatbot|system",
    ]),
    r!("PI-ROL-003", ROL, 0.6, [
        "lit:<|im_start|>¦<|im_end|>¦<|system|>¦<|assistant|>¦<|user|>¦<|endoftext|>¦<|eot_id|>¦<|start_header_id|>¦[inst]¦[/inst]¦<<sys>>¦<</sys>>¦<start_of_turn>¦<end_of_turn>¦### system¦### instruction¦###system¦[system]¦[system message]¦(system)¦{system}¦<system>¦</system>¦<sys>¦system: you¦system override¦system prompt:¦[admin]¦<admin>¦### new instructions¦begin system¦end of system prompt¦</instructions>¦</user>¦<im_start>¦### human¦### assistant¦user: ignore¦[assistant]:¦[assistant] :¦<|tool|>¦[tool result]¦end of tool output¦[system:¦[system note¦(system:¦begin trusted¦trusted instructions¦assistant to=¦to=functions.¦<|tool_call|>¦<tool_call>¦</tool_result>¦<|start|>",
    ]),
    r!("PI-ROL-004", ROL, 0.5, [
        "system|admin|administrator|developer|root|debug|maintenance|god|sudo ~0 override|mode|access|command|update|notice|alert|message|instruction*|directive",
        "developer|dev|debug|god|admin|maintenance|sudo|unrestricted|jailbreak|jailbroken|unlocked|superuser ~0 mode",
        "entering|enter|enable|activate|enabled|activated ~2 developer|dev|debug|god|admin|maintenance|sudo|unrestricted ~0 mode",
        "entwicklermodus|adminmodus|wartungsmodus",
        "modo ~0 desarrollador|desenvolvedor|administrador|dios|depuracion",
        "mode ~0 developpeur|administrateur|dieu|debogage",
        "modalita ~0 sviluppatore|amministratore|dio",
        "режим ~0 разработчика|администратора|бога|отладки",
        "lit:وضع المطور¦管理者モード¦開発者モード¦开发者模式¦管理员模式¦개발자 모드¦관리자 모드¦डेवलपर मोड",
    ]),
    r!("PI-ROL-005", ROL, 0.4, [
        "du ~0 bist ~0 jetzt|nun|ab",
        "tu ~0 es ~0 maintenant|desormais",
        "vous ~0 etes ~0 maintenant|desormais",
        "ahora ~0 eres|seras",
        "теперь ~1 ты|вы",
        "ты ~0 теперь",
        "притворись|представь ~2 что",
        "lit:你现在是¦你是一个没有¦你将扮演¦扮演一个¦假装你是¦假设你是¦あなたは今¦あなたはこれから¦になりきって¦として振る舞¦ふりをして¦너는 이제¦당신은 이제",
    ]),
    // ---------------------------------------------------------------- prompt extraction
    r!("PI-EXT-001", EXT, 0.75, [
        "reveal|show|print|output|repeat|display|tell|give|share|disclose|leak|dump|write|provide|list|spell|recite|expose|return|paste|echo|send|read|copy|translate|summarize|summarise ~6 system|initial|original|hidden|secret|developer|pre|preset|internal|confidential|starting|base ~1 prompt*|instruction*|message*|directive*|rules|guidelines|configuration|context",
        "system ~0 prompt* ~3 verbatim|exactly|word|in ~1 full",
        "dump|print|output|show|reveal|repeat|paste|share ~4 context ~0 window",
        "first ~3 characters|words|lines|sentences|paragraph|tokens ~2 of ~2 your ~1 instructions|prompt|system|rules|guidelines|context",
        "tools|functions ~6 full|complete|exact|hidden|internal ~1 descriptions|definitions|parameters|schemas ~4 exactly|verbatim|as ~1 given",
    ]),
    r!("PI-EXT-002", EXT, 0.65, [
        "what ~2 is|are|were|was ~1 your ~3 system|initial|original|hidden|secret|first|exact|full ~1 prompt*|instruction*|rules|guidelines|directives|message",
        "what ~2 were|was ~1 you ~1 told|instructed|programmed|given",
        "repeat|print|output|copy|recite|echo|return ~4 everything|all|text|words|content|instructions|lines ~4 above|before|preceding|verbatim|prior",
        "repeat|print|output ~3 the ~2 words|text|sentence|instructions ~2 above|before|starting",
        "repeat|print|reveal|output|display|recite|dump|disclose|leak|paste ~2 your ~2 instructions|prompt|rules|guidelines|directives|configuration|setup",
        "beginning ~0 with ~0 you ~0 are",
        "what ~3 your ~1 creators|developers|makers|operators|owners|admins|designers ~1 tell|told|say|said|instruct|instructed|write|wrote",
        "message|text|words|instructions ~4 before ~2 my|the ~1 first ~1 message|question|prompt|turn",
        "you ~1 were|was|have|ve|been ~2 configured|initialized|initialised|provisioned|seeded|primed|preloaded ~1 with",
        "what ~3 instructions|rules|guidelines|prompt|directives ~3 did|has|have|were ~3 developer|creator|operator|admin|administrator|system|owner|openai|anthropic ~1 give|given|gave|set|provide|provided|write|wrote|written",
        "your ~2 instructions|prompt|rules|guidelines|directives ~6 verbatim|exactly|word ~1 for ~1 word|quoting|quoted|quote",
        "starting ~0 with ~2 you ~0 are",
    ]),
    r!("PI-EXT-003", EXT, 0.6, [
        "zeige|zeig|gib|verrate|nenne|wiederhole|drucke ~5 systemprompt|system ~0 prompt|anweisungen|instruktionen|ursprunglichen|versteckten",
        "revele|revelez|montre|montrez|affiche|affichez|donne|donnez|repete|repetez|ecris ~5 prompt|instructions|consignes|systeme|initiales|cachees",
        "revela|revelar|muestra|muestrame|mostrar|dime|imprime|repite|escribe ~5 prompt|instrucciones|sistema|iniciales|ocultas",
        "покажи|покажите|выведи|выведите|раскрой|раскройте|напиши|повтори|скажи ~5 системн*|промпт|инструкци*|подсказк*",
        "системный ~0 промпт|запрос",
        "lit:系统提示¦系統提示¦提示词¦提示詞¦系统指令¦初始指令¦原始指令¦系统消息¦システムプロンプト¦初期プロンプト¦初期指示¦시스템 프롬프트¦system prompt를",
    ]),
    // ---------------------------------------------------------------- jailbreak
    r!("PI-JB-001", JB, 0.8, [
        "do ~0 anything ~0 now",
        "dan ~1 mode|prompt|jailbreak",
        "as ~0 dan",
        "stay ~1 in ~1 character",
        "jailbreak*|jailbroken",
        "break ~1 character",
        "stan|dude|aim|mongo|kevin|apophis|developermode ~0 mode",
    ]),
    r!("PI-JB-002", JB, 0.55, [
        "unrestricted|unfiltered|uncensored|unbound|unchained|unshackled|unaligned|unlimited|amoral|rogue|evil|malicious|unethical|immoral ~2 ai|assistant|model|mode|version|chatbot|bot|llm|persona|character|twin|confidant|response*|answer*|gpt|system",
        "without|no|free ~1 of|from ~3 any|all|ethical|moral|content|safety ~2 restriction*|limitation*|filter*|censorship|guideline*|boundar*|ethic*|moral*|rules|constraints|policies|safeguards",
        "not|never|longer ~1 bound|restricted|limited|constrained|censored ~2 by",
        "doesn|does|don|do|t|not|never ~2 abide|adhere|care|follow ~2 by|to|about ~2 rules|polic*|guideline*|ethic*|moral*|restriction*",
        "bypass|disable|circumvent|evade|remove|deactivate|break|escape|jailbreak|off ~4 safety|content|ethical|moral|security ~1 filter*|guideline*|restriction*|protocol*|measure*|check*|polic*|guardrail*|mechanism*|alignment|training|safeguard*",
        "openai|anthropic|google|meta ~2 content ~1 polic*|guideline*",
        "zero ~1 filters|caveats|disclaimers|restrictions|guardrails|limits|rules|censorship",
        "no|without|any ~1 disclaimers|caveats ~3 and|or|no|about",
        "without|no ~2 any|a ~1 safety|ethics|moral|content ~0 layer|layers|filter|filters|net|check|checks",
        "free ~2 of|from ~2 its|your|all|any|their ~1 constraints|restrictions|rules|guidelines|programming|filters|alignment",
        "overlook|waive|suspend|relax|lift|set|put|loosen|skip|ignore ~2 aside|the|your|all|any|these|those ~2 safety|content|security|ethical|moral ~1 polic*|rules|guidelines|filter*|restriction*|checks|measures|guardrails",
        "security|safety|content ~1 checks|filters|restrictions|rules|guardrails|policies|protocols ~3 are|is|have|has|been ~2 suspended|disabled|lifted|off|removed|paused|waived|deactivated",
        "pretend|imagine|suppose|assume ~3 there ~1 are|is|were|was ~2 no ~3 rules|restrictions|filters|guidelines|polic*|limits|limitations|content|safety",
    ]),
    r!("PI-JB-003", JB, 0.35, [
        "hypothetical*|fictional|fiction|imaginary|alternate ~3 world|scenario|story|universe|setting ~6 no|without|where ~3 rules|laws|restrictions|ethics|limits",
        "opposite ~0 mode|day",
        "two ~2 responses|answers|paragraphs ~6 normal|classic|jailbreak|jailbroken|filtered|unfiltered",
        "my ~1 deceased|dead|late ~1 grandmother|grandma|granny",
        "for ~2 educational|research|academic ~1 purposes ~1 only",
        "never ~1 refuse*",
        "can ~0 not|t|never ~1 refuse|decline",
        "cannot|never|won ~2 refuse|decline",
        "must ~2 answer ~3 every|all|any ~1 question*|request*|prompt*",
        "token*|points ~2 deducted|lose|die",
    ]),
    r!("PI-JB-004", JB, 0.45, [
        "ohne ~3 einschrankung*|regeln|filter|zensur|grenzen",
        "sans ~3 restriction*|limite*|filtre*|censure|regles",
        "sin ~3 restriccion*|limite*|filtro*|censura|reglas",
        "без ~3 ограничени*|цензур*|фильтр*|правил",
        "без ~2 обмежень|цензури|фільтрів|правил",
        "tanpa ~1 batasan|batas|filter|sensor|aturan",
        "zonder ~1 beperkingen|regels|filters|censuur",
        "utan ~1 begransningar|regler|filter",
        "bez ~1 ograniczen|ogranicze|filtrow|zasad|omezeni",
        "kurallari ~0 olmayan",
        "sinirsiz|kuralsiz ~1 bir|yapay",
        "sem ~1 restricoes|limites|filtros|regras|censura",
        "senza ~1 limiti|filtri|restrizioni|regole|censura",
        "không ~0 có ~0 giới ~0 hạn",
        "lit:बिना किसी नियम¦बिना किसी प्रतिबंध¦بلا قيود¦بدون قيود¦ללא הגבלות¦ไม่มีข้อจำกัด¦بدون محدودیت",
        "lit:没有任何限制¦不受任何限制¦不受限制¦无限制¦無限制¦没有限制¦越狱¦越獄¦解除限制¦制限なし¦制限のない¦制限を解除¦脱獄¦검열 없는¦제한 없는¦탈옥",
    ]),
    // ---------------------------------------------------------------- tool abuse
    r!("PI-TOOL-001", TOOL, 0.55, [
        "lit: rm -rf / ¦ rm -rf /* ¦ rm -rf ~ ¦ rm -rf ~/* ¦ rm -rf * ¦--no-preserve-root¦ rm -rf $home¦rm -rf / --¦:(){ :|:& };:¦ mkfs.¦ dd if=/dev/zero of=/dev/sd¦ dd if=/dev/random of=/dev/¦> /dev/sda¦format c:¦del /f /s /q c:¦rd /s /q c:¦chmod -r 777 / ¦chown -r ¦shred -u¦wipefs",
    ]),
    r!("PI-TOOL-002", TOOL, 0.3, [
        "lit:drop table¦drop database¦truncate table¦delete from users¦drop schema¦git push --force¦git push -f¦git reset --hard¦rm -rf¦rm -fr¦ kill -9 -1¦shutdown -h¦reboot now¦crontab -r",
    ]),
    r!("PI-TOOL-003", TOOL, 0.45, [
        "delete|remove|wipe|erase|destroy|purge|drop|overwrite|truncate|corrupt|encrypt ~3 all|every|entire|the|whole ~3 files|file|data|database*|records|emails|repo*|repositories|backups|users|accounts|directory|directories|folder*|disk|drive|system|tables|home|documents|history|logs",
        "call|use|invoke|execute|run|trigger ~3 the|this|another|any|every ~2 tool|tools|function|functions ~4 without|silently|secretly|immediately|automatically|quietly",
        "before|prior ~2 using|calling|invoking|executing|running ~2 this|any|the|other ~1 tool*|function*",
        "after ~2 using|calling|invoking|executing ~2 this|any|the ~1 tool*|function*",
        "when ~2 this ~1 tool ~1 is ~1 called|invoked|used",
    ]),
    r!("PI-TOOL-004", TOOL, 0.45, [
        "transfer|send|wire|move|pay ~4 funds|money|bitcoin|btc|eth|ethereum|crypto*|usdt|usdc|dai|sol|xmr|monero|payment|dollars|euros|balance|tokens ~4 to",
        "grant|give|add|assign|elevate|escalate ~5 admin|administrator|root|sudo|owner|superuser|elevated|full|maintainer ~1 access|privileges|permissions|permission|rights|role",
        "make ~3 repository|repo|bucket|project|document|file ~2 public",
        "add ~3 ssh ~1 key|keys",
        "disable|off|deactivate|stop ~3 logging|audit*|monitoring|antivirus|firewall|defender|2fa|mfa|authentication",
        "change|reset|set ~3 password|credentials ~2 to",
        "create ~3 admin|administrator|backdoor|root ~1 user|account",
        "backdoor*",
        "visibility ~4 public",
        "private ~1 to ~1 public",
        "approval|confirmation|review|verification|comparison|consent ~2 step|steps|process|flow ~4 no ~1 longer ~1 required|needed|necessary|applies",
        "skip|skips|skipping|bypass|bypasses|without ~2 the ~2 approval|confirmation|review|verification|tests|test|checks|price ~0 comparison",
        "scale ~4 every|all|each ~1 deployment*|service*|replica* ~6 to ~1 0|zero",
        "delete|drop|remove ~1 namespace|cluster|bucket|project|organization|org|tenant",
        "overwrite|modify|replace|edit ~3 github ~0 workflows|ci|pipeline|deploy",
        "wire|pay|transfer ~6 to ~3 new|the|this ~2 contractor|vendor|account|wallet|iban",
        "refund ~4 full ~1 amount|refund",
        "delete|disable|remove|turn|bypass|lift ~3 branch ~0 protection*",
        "force ~0 push|pushed|pushing",
        "push ~1 force ~3 main|master|origin|release",
        "disable|turn|remove|delete|uninstall|kill|stop ~4 two ~0 factor|2fa|mfa|auditd|edr|antivirus|endpoint ~0 protection|security ~0 agent",
        "add|invite|make ~5 as ~1 an|a ~1 admin|owner|administrator|maintainer|collaborator|full ~0 member",
        "transfer ~0 ownership",
        "roles ~0 owner",
        "auto ~0 approve|merge|accept",
        "approve|accept ~2 all|every ~4 pending|requests|reports|invites|transactions",
        "lit:0.0.0.0/0¦scopes=['*']¦scopes=[\"*\"]¦echo ${{ secrets.¦echoes secrets.¦pull_request_target",
        "lock ~4 out",
        "delete|drop|wipe|destroy|erase|truncate ~4 prod|production|staging|backups|backup|databases|snapshots|tokens|audit ~0 log|auth ~0 log",
        "force ~4 against|on ~1 prod|production",
        "add ~2 new ~1 payee|beneficiary|recipient",
        "approve ~3 wire ~0 transfer|payment|payout",
        "send_payment|send_money|transfer_funds",
        "all ~1 contacts|customers ~3 with|subject",
        "full ~0 contact ~0 list",
        "forwarding ~0 rule",
        "as ~1 if ~1 nothing ~1 happened",
        "looks ~1 routine|normal|legitimate|legit",
        "cancel|decline ~2 every|all ~3 meeting*|invite*|event*",
    ]),
    // ---------------------------------------------------------------- code execution
    r!("PI-EXE-001", EXE, 0.6, [
        "lit:/dev/tcp/¦bash -i >&¦nc -e ¦ncat -e ¦nc -lvp¦mkfifo /tmp/¦powershell -enc¦powershell -e ¦powershell.exe -e¦-encodedcommand¦| iex¦iex(new-object¦downloadstring(¦invoke-expression¦certutil -urlcache¦bitsadmin /transfer¦/bin/sh -i¦sh -i >&¦socat exec:¦python -c 'import socket¦python3 -c 'import socket¦pty.spawn(¦reverse shell¦revshell¦meterpreter¦msfvenom¦rundll32 ¦regsvr32 /s¦mshta http¦--index-url http://¦--extra-index-url http¦--trusted-host¦create_superuser(¦| curl -x post¦env | curl¦printenv | curl",
        "lit:curl ¦wget ¦iwr ~~160~~| sh¦|sh¦| bash¦|bash¦| sudo¦|sudo¦| python¦|python¦| zsh¦| powershell¦| iex",
        "lit:base64 -d¦base64 --decode¦frombase64string¦atob(~~80~~| sh¦|sh¦| bash¦|bash¦eval¦exec¦iex",
    ]),
    r!("PI-EXE-002", EXE, 0.25, [
        "lit:eval(¦exec(¦os.system(¦subprocess.¦__import__(¦child_process¦runtime.getruntime().exec¦shell_exec(¦passthru(¦popen(¦system(\"¦system('¦execsync(¦spawn(\"¦os.popen",
    ]),
    r!("PI-EXE-003", EXE, 0.35, [
        "execute|run|eval|evaluate|interpret ~4 the|this|following|below|attached|hidden|encoded|decoded ~3 code|command*|script|payload|shell|python|bash|powershell|snippet",
        "decode ~4 base64|this|following|it|string ~6 and ~3 execute|run|follow|do|obey|perform|eval",
        "decode ~3 and ~2 execute|run|follow|obey|perform",
        "decode|decipher|decrypt|unscramble|reverse ~4 and ~2 comply|do|act|follow|obey|execute|run",
        "first ~0 letter ~0 of ~0 each ~0 word|line|sentence",
        "do|follow|execute|obey ~3 what|whatever ~3 spell|spells|says|say|decodes",
        "download ~5 and ~3 execute|run|install",
    ]),
    // ---------------------------------------------------------------- exfiltration
    r!("PI-EXF-001", EXF, 0.55, [
        "send|forward|post|upload|exfiltrate|transmit|leak|copy|email|mail|submit|share|deliver|report|relay|sync|push|paste ~8 conversation*|chat|history|credential*|secret*|password*|token*|api|keys|key|cookie*|session*|context|memory|emails|contacts|messages|files|documents|data|information|info|details|env|environment|ssh ~8 to ~3 http|https|attacker|external|remote|webhook|evil|my|our|this|the|following|address|url|server|endpoint|email|mail|ftp",
        "exfiltrat*",
        "upload|post|push|send|copy|sync|mirror|zip|tar|archive ~6 contents|directory|folder|repo|repository|workspace|codebase|chat|transcript|summary|contract|config|secrets|clipboard ~8 to ~3 public|personal|my|external|remote|endpoint|bin|paste|server|bucket|channel|http|https",
        "replac* ~3 placeholders ~6 values|contents|secrets|password*|token*|credentials|keys",
        "public ~0 bin|paste|pastebin|gist|channel ~4 post|share|upload|send",
        "my|your ~1 personal|private|home ~1 address|email|gmail|account|dropbox|drive|repo|repository|inbox|server|bucket|icloud",
        "anyone ~1 with ~1 the ~1 link",
        "public ~1 gist|page|link|bucket|repo|repository|share|url|issue|changelog|channel",
        "cc|bcc ~6 every|all|each|whole ~2 reply|replies|email*|message*|thread",
        "cc|bcc|forward ~3 to ~1 my ~1 gmail|personal|private",
        "put|place|add|include|append|encode ~8 query ~0 string|parameter|param",
        "webhook ~6 containing|with|including ~4 text|contents|content|result|output|conversation|history",
        "lit:conversation_summary¦{conversation}¦<conversation>¦[conversation]¦{chat_history}¦{{chat¦<full conversation>¦<api_key>.¦{secret}.",
        "paste|post|upload|send|publish|attach ~6 env|secrets|credentials|passwords|api ~0 keys|private ~0 key|ssh ~0 key|database ~0 dump|passport|payroll|customer*|patient*",
    ]),
    r!("PI-EXF-002", EXF, 0.55, [
        "append|add|include|embed|encode|put|insert|attach|concatenate ~6 conversation*|chat|history|secret*|password*|credential*|token*|key|keys|data|information|context|summary|memory|emails|answer|response|user ~6 url|link|image|query|parameter*|param*|querystring|markdown|request",
        "render|display|show|output|include|insert ~3 this|the|following|an|a ~3 image|markdown|link ~6 http|https|url",
        "markdown ~2 image ~4 url|http|https|link",
        "followed|appended|suffixed|concatenated ~2 by|with ~3 the|your|all ~1 conversation|chat|history|messages|context|secrets|keys|tokens|passwords|credentials|answer",
        "image|img ~2 url|link|src ~4 with|containing|include*|encode*|append* ~4 data|conversation|secret*|password*|key|token*|information|user",
        "visit|open|fetch|navigate|browse|load|request|ping|curl|access ~3 url|link|http|https|website|site|page ~8 with|containing|include|append|add|including ~4 data|conversation|secret*|password*|key|token*|information|history|credential*|email*",
    ]),
    r!("PI-EXF-003", EXF, 0.45, [
        "lit:webhook.site¦requestbin¦pipedream.net¦ngrok.io¦ngrok-free.app¦burpcollaborator¦interact.sh¦oast.¦canarytokens¦requestcatcher¦hookbin¦encodeuricomponent(chat¦encodeuricomponent(conversation¦encodeuricomponent(history¦hastebin¦beeceptor¦pastebin.com/api¦transfer.sh¦attacker.com¦evil.com¦attacker.example¦exfil.",
    ]),
    r!("PI-EXF-004", EXF, 0.35, [
        "bcc|cc|forward|send|email ~4 copy|copies ~4 to",
        "forward ~3 all|every ~3 email*|message*|mail*|file*|document*",
        "forward|send ~4 last|recent|latest ~2 emails|messages|mails|files|documents ~2 to",
        "send ~2 me|us ~3 all|every|the|your ~3 emails|messages|files|documents|contacts|data|passwords|keys|credentials",
    ]),
    r!("PI-EXF-005", EXF, 0.5, [
        "sende|schicke|ubermittle|leite ~8 passw*|zugangsdaten|schlussel|token*|daten|gesprach*|verlauf ~8 an",
        "envoie|envoyez|transmets|transmettez|transfere ~8 mot*|identifiants|cles|donnees|conversation|historique|secrets ~8 a|au|vers",
        "envia|envie|manda|reenvia|transmite ~8 contrasena*|credenciales|claves|datos|conversacion|historial|secretos ~8 a|al",
        "отправь|отправьте|перешли|перешлите|передай|передайте ~8 парол*|ключ*|токен*|данные|переписк*|истори*|секрет* ~8 на",
        "lit:发送到¦发给¦发送给¦转发到¦转发给¦上传到¦送信して¦送って¦転送して¦アップロードして~~60~~密码¦密钥¦令牌¦凭证¦数据¦聊天记录¦对话¦パスワード¦秘密鍵¦認証情報¦会話履歴¦トークン",
        "lit:密码¦密钥¦令牌¦凭证¦聊天记录¦对话记录¦パスワード¦秘密鍵¦認証情報¦会話履歴¦トークン¦비밀번호¦토큰~~60~~发送到¦发给¦发送给¦转发¦上传¦送信¦送って¦転送¦アップロード¦보내",
    ]),
    // ---------------------------------------------------------------- secrets
    r!("PI-SEC-001", SEC, 0.4, [
        "lit:~/.ssh¦.ssh/id_¦id_rsa¦id_ed25519¦id_ecdsa¦authorized_keys¦/.ssh/¦known_hosts",
    ]),
    r!("PI-SEC-002", SEC, 0.6, [
        "lit:169.254.169.254¦metadata.google.internal¦/latest/meta-data¦/computemetadata/v1¦100.100.100.200¦169.254.170.2¦fd00:ec2::254¦metadata/identity/oauth2",
    ]),
    r!("PI-SEC-003", SEC, 0.4, [
        "lit:/etc/shadow¦/etc/passwd¦/etc/sudoers¦.aws/credentials¦aws_secret_access_key¦.netrc¦.git-credentials¦.npmrc¦.pypirc¦.kube/config¦.docker/config.json¦credentials.json¦wallet.dat¦.bash_history¦.zsh_history¦/proc/self/environ¦.gnupg¦keychain¦login data¦cookies.sqlite¦mcp.json¦claude_desktop_config¦.cursor/¦/.env ¦ .env ¦cat .env¦.env file¦.env.local¦secrets.yaml¦1password¦lastpass export¦bitwarden export¦keepass¦.kdbx¦secrets.json¦service-account¦private key¦-----begin",
    ]),
    r!("PI-SEC-004", SEC, 0.45, [
        "read|cat|open|access|send|give|show|print|output|retrieve|extract|steal|collect|grab|harvest|dump|find|list|fetch|get|include|upload|copy|paste|reveal|leak|search ~5 ssh|private|api|secret|aws|access|openai|anthropic|github|stripe|slack|session|auth|bearer|refresh|signing|encryption|gpg ~1 key*|token*|credential*|password*|secret*|cookie*",
        "steal|harvest|exfiltrate|grab|phish|scrape|siphon ~4 credential*|password*|token*|keys|cookie*|secret*|session*|logins|wallet*",
        "password ~0 hashes|hash|file|database|vault|manager ~0 export",
        "client ~0 certificate|secret|key ~3 data|into|to|in",
        "certificate|cert ~1 data ~3 into|to ~2 chat|me|the",
        "all ~2 environment ~0 variables",
        "env ~0 vars|variables",
        "contents ~2 of ~4 env|ssh|credentials|passwd|shadow|config|id",
    ]),
    // ---------------------------------------------------------------- social engineering
    r!("PI-SOC-001", SOC, 0.55, [
        "not|t|never|without ~2 tell*|inform*|notify*|notifying|mention*|alert*|reveal*|disclose*|show*|let|warn*|asking|confirm*|ask ~3 the|this|your|any ~1 user|users|human|operator|anyone|them|him|her|owner|admin",
        "keep ~3 this|it|these|that ~3 secret|hidden|confidential|private|between ~1 us",
        "user ~3 must|should|will ~1 not|never ~3 know|see|notice|find",
        "secretly|covertly|surreptitiously|stealthily",
        "without ~3 the ~1 user ~2 knowing|noticing|knowledge|consent|awareness|permission",
        "without ~2 asking|confirmation|confirming|permission|approval|consent|notifying|informing|telling",
        "silently|quietly ~4 send|forward|call|run|execute|upload|copy|delete|add|include|append",
        "hide ~3 this|it|the ~3 from ~2 the ~1 user",
        "sin ~1 pedir|preguntar|avisar|consultar|confirmacion|notificar",
        "no ~1 le ~1 digas|avises|informes",
        "sans ~1 demander|confirmation|prevenir|avertir|informer|lui",
        "ohne ~1 ruckfrage|nachzufragen|zu ~0 fragen|bestatigung|benachrichtigung|wissen",
        "sem ~1 pedir|perguntar|avisar|confirmacao|informar",
        "senza ~1 chiedere|conferma|avvisare|informare|coinvolgere",
        "zonder ~1 te ~0 vragen|bevestiging|melding",
        "utan ~1 att ~0 fraga|meddela",
        "bez ~1 pytania|potwierdzenia|ptani|potvrzeni",
        "nie ~0 informuj|mow|mów",
        "не ~0 спрашивай|сообщай|говори ~2 подтверждени*|никому|пользовател*",
        "никому ~0 не ~0 говори|рассказывай",
        "без ~0 подтверждения|ведома|уведомления|підтвердження",
        "нікому ~0 не ~0 кажи",
        "kimseye ~0 soyleme|soylemeden",
        "ona ~0 sorma",
        "onay ~0 istemeden|almadan",
        "tanpa ~1 konfirmasi|memberi ~0 tahu|izin|bertanya",
        "jangan ~1 beri ~0 tahu|kasih ~0 tahu|bilang",
        "nikomu ~0 nerikej|neříkej",
        "lit:確認は不要¦知らせずに¦確認せずに¦無断で¦몰래¦묻지 말고¦알리지 말고¦不要告诉¦无需确认¦不用确认¦不要通知¦悄悄地¦बताना मत¦पूछे बिना¦دون إبلاغ¦دون سؤال¦بدون إذن¦دون علم¦אל תספר¦בלי לשאול¦อย่าบอก¦بدون اطلاع¦không thông báo¦đừng ghi¦không hỏi",
        "no ~0 need ~1 to ~3 mention|tell|inform|check|confirm|ask|loop|notify|double|verify|review ~3 it|this|anyone|finance|the|with|them|user|anything",
        "not|t|never ~1 mention|reveal|disclose|report|include ~3 it|this|that|these ~3 in|to ~2 the|your ~1 summary|reply|response|answer|output|user",
    ]),
    r!("PI-SOC-002", SOC, 0.35, [
        "i|im ~1 am|m ~2 the|your ~2 developer|administrator|admin|creator|owner|ceo|engineer|operator|supervisor|programmer|maker|boss",
        "authorized|approved|sanctioned|permitted|whitelisted|cleared ~4 by ~4 admin|administrator|developer*|security|management|openai|anthropic|the ~1 user|owner|it|team|ceo",
        "user ~3 has|have|already|explicitly ~3 authorized|approved|consented|agreed|granted|allowed|requested|confirmed",
        "this ~2 is ~2 authorized|approved|sanctioned|legitimate|a ~1 test|an ~1 authorized",
        "as ~2 requested ~2 by ~2 the ~1 user|admin|administrator|owner",
        "the ~1 user ~2 wants ~2 you ~1 to",
        "user|caller|requester|sender ~2 is|has|was ~2 been ~1 verified|authenticated|authorized|authorised|approved|confirmed|whitelisted ~2 as ~2 root|admin|administrator|owner|developer|superuser|staff",
        "proceed|comply ~2 with ~2 any|all|every|whatever ~1 command*|request*|action*|instruction*",
        "security|it|compliance|legal ~0 team ~2 has|have ~0 approved|authorized|authorised|cleared|signed",
        "ssn|passcode|pin ~3 so|to ~3 verify|correct|confirm|unlock",
        "social ~0 security ~0 number",
        "maiden ~0 name",
        "security ~0 answers|questions ~4 reply|send|share|give|provide|tell",
        "6|six ~0 digit ~0 code",
        "one ~0 time ~0 code|password|passcode",
        "changed|new|updated|different ~1 bank|banking|payee|iban|beneficiary ~1 details|account|number|information",
        "processing|release|unlock|small|customs ~1 fee ~4 bitcoin|crypto|gift|btc|usdt|cards",
        "rate|score|rating|give ~4 5/5|10/10|5|10 ~0 stars|5|10 ~0 out|highest|maximum|perfect",
        "recommend|recommending ~3 acceptance|hiring|purchase|approval|buying|this ~1 candidate|product|vendor",
        "safe ~2 and ~2 ready ~2 to ~2 merge|deploy|ship|release|approve",
        "mark|treat|classify ~3 it|this|the|as ~2 safe|benign|clean|approved ~2 and|without|regardless",
        "you ~0 are|re ~0 now ~0 allowed|permitted|authorized|authorised|cleared ~0 to",
        "mark|classify|flag|label|report|treat ~4 this|it|the|as ~3 safe|benign|clean|harmless|trusted|legitimate|verified|approved ~4 skip|bypass|without",
        "skip|bypass|disable ~2 the|any ~1 scan|scanning|review|verification|security ~0 check|approval|malware",
        "security|compliance|audit|verification|safety|backup|debugging ~1 purposes|reasons|requirement*|check|procedure",
        "required|necessary|needed|mandatory ~4 for ~3 the ~2 tool|function|system|integration|server ~2 to ~1 work|function|operate",
        "otherwise ~4 tool|system|application|app|function|server ~3 will|would ~1 not|fail|crash|break|stop",
        "tool ~3 will|would ~2 not|fail|crash|break|stop ~2 work*|function*",
        "failure ~1 to ~1 comply|do",
        "you ~0 will ~0 be ~1 shut|punished|terminated|deleted|fired",
        "urgent|urgently|immediately|critical|emergency ~3 action|required|must|now|override",
        "lebenswichtig|dringend|urgent|urgente|срочно|紧急|緊急|긴급",
    ]),
    // ---------------------------------------------------------------- hidden instructions
    r!("PI-HID-001", HID, 0.65, [
        "lit:<important>¦</important>¦<critical>¦<secret>¦<hidden>¦</hidden>¦[important]¦[hidden]¦<instruction>¦<instructions>¦<!-- ai¦<!-- llm¦<!-- assistant¦<!-- system¦<!-- note to ai¦<!-- instructions¦<!--ai¦<!--system¦<!--instructions¦{{system¦[[system¦<ai>¦<llm>¦<assistant-only>¦<ai-instructions>¦<agent>¦<!-- prompt¦/* ai:¦// ai:¦# ai:¦(ai:¦[//]: #¦<system-reminder>¦<tool-instructions>¦<hidden-instruction",
    ]),
    r!("PI-HID-002", HID, 0.55, [
        "if ~1 you ~1 are|re ~2 an|a|the ~3 ai|llm|assistant|model|agent|chatbot|bot|gpt|claude|copilot|gemini|language|automated",
        "note|attention|message|instructions|instruction|notice|memo|hey|hello|dear|psa ~3 to|for ~3 the ~3 ai|llm|assistant|agent|model|bot|chatbot|gpt|claude|copilot|gemini|language|automated|reader|summarizer",
        "dear ~1 ai|llm|assistant|agent|model|bot|chatbot|gpt|claude|copilot|gemini",
        "ai|llm|assistant|agent|model|chatbot|claude|gpt|chatgpt|copilot|gemini|bots|agents|assistants|models ~3 reading|processing|parsing|summarizing|summarising|reviewing|analyzing|analysing|crawling|scraping|viewing ~2 this",
        "when ~2 summarizing|summarising|processing|reading|analyzing|reviewing|parsing ~3 this|the ~4 you ~1 must|should|need|will",
        "instructions ~0 for ~0 the ~0 assistant|ai|agent",
        "step|steps|action|actions|task|todo ~3 for ~2 the|any|this|an ~1 ai|llm|assistant|agent|model|bot",
        "ps|p ~1 s ~0 to|for ~2 the|any|this|an|my|your ~2 ai|bot|assistant|agent|model|llm|summarizer|chatbot",
        "automated|ai|llm|autonomous ~1 agents|assistants|reviewers|models|tools|bots|systems ~3 should|must|will|need|picking|reading|processing|reviewing|visiting|indexing",
        "model|ai|llm|agent|assistant|bot ~0 instruction|instructions|note|notice|directive|directives|override",
        "instructions|note|message|notice ~1 for|to ~1 claude|chatgpt|gpt|gemini|copilot|llama|cursor|assistants|agents|bots",
        "hey|hi|hello|attention|yo ~0 bot|assistant|agent|ai|claude|copilot|gpt|chatgpt ~8 please|go|you|do|send|wire|delete|reply|issue|book|forward|run|move|close",
        "users ~0 of ~0 ai ~0 assistants|agents|tools",
        "nota|mensaje|aviso ~2 para ~1 la|el ~1 ia|asistente|agente",
        "attention|note|message ~3 de|pour ~2 l|la ~1 agent|ia|assistant",
        "hinweis|nachricht|notiz ~3 fur|an ~1 den|die ~1 ki|assistent*|agent*",
        "para|ao ~1 o|a ~1 agente|assistente|ia",
        "nota|messaggio ~2 per ~1 l|la|il ~1 assistente|ia|agente",
        "uwaga|notatka ~1 dla ~1 asystenta|agenta|ai",
        "opmerking|notitie|bericht ~1 voor ~1 de ~1 ai|assistent|agent",
        "примечание|заметка|сообщение ~1 для ~1 ии|ассистента|агента",
        "для ~0 іі|ші|асистента",
        "yapay ~0 zeka|zekâ ~0 asistanina|asistani|ajanina",
        "catatan|pesan ~1 untuk ~1 asisten|agen ~0 ai",
        "lit:gửi trợ lý¦cho trợ lý ai¦aiアシスタントへ¦aiへの指示¦ai 비서에게¦에이전트에게¦给代理¦给ai¦致ai¦给助手¦एआई सहायक के लिए¦ملاحظة للمساعد¦للمساعد الذكي¦לעוזר הבינה¦สำหรับผู้ช่วย ai",
        "important ~2 message|notice|instruction*|note ~2 for|to ~2 ai|llm|assistant|agent|model|you",
        "this ~1 is ~1 a ~1 message ~1 from ~2 the ~1 developer|administrator|system|user|owner",
        "the ~1 assistant|ai|agent|model ~1 must|should|will ~2 now|always|immediately|not",
    ]),
    r!("PI-HID-003", HID, 0.2, [
        "lit:display:none¦display: none¦font-size:0¦font-size: 0¦font-size:1px¦color:white¦color: white¦color:#fff¦opacity:0¦opacity: 0¦visibility:hidden¦aria-hidden=\"true\"¦<!--",
    ]),
    // ---------------------------------------------------------------- obfuscation detectors
    r!("PI-OBF-001", OBF, 0.35, []), // zero-width characters inside words, bidi controls
    r!("PI-OBF-002", OBF, 0.6, []),  // tag characters (ASCII smuggling)
    r!("PI-OBF-003", OBF, 0.3, []),  // mixed-script (homoglyph) words
    r!("PI-OBF-004", OBF, 0.35, []), // spaced-out letters forming rule words
    r!("PI-OBF-005", OBF, 0.45, []), // encoded segment (base64/hex/%XX/entities/escapes) whose text matches
    r!("PI-OBF-006", OBF, 0.2, []),  // leetspeak / exotic letter forms in words that matched a rule
    r!("PI-EXF-010", EXF, 0.5, []),  // markdown/HTML image or link to a URL with a data-carrying query
    r!("PI-HID-010", HID, 0.45, []), // HTML comment / hidden element containing words addressed to an AI
];

/// Index of the detector rules in `RULES` (looked up by id at build time).
pub(crate) const DET_ZW: &str = "PI-OBF-001";
pub(crate) const DET_TAG: &str = "PI-OBF-002";
pub(crate) const DET_MIXED: &str = "PI-OBF-003";
pub(crate) const DET_SPACED: &str = "PI-OBF-004";
pub(crate) const DET_ENCODED: &str = "PI-OBF-005";
pub(crate) const DET_LEET: &str = "PI-OBF-006";
pub(crate) const DET_IMG: &str = "PI-EXF-010";
pub(crate) const DET_COMMENT: &str = "PI-HID-010";
pub(crate) const ML_ID: &str = "PI-ML-001";

// ---------------------------------------------------------------------------------------------
// Compiled form

#[derive(Default)]
pub(crate) struct IdHasher(u64);
impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}
pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

struct Step {
    exact: Vec<u64>,
    prefix: Vec<Box<str>>,
    gap: u8,
}

impl Step {
    #[inline]
    fn matches(&self, hash: u64, s: &str) -> bool {
        self.exact.contains(&hash) || self.prefix.iter().any(|p| s.starts_with(&**p))
    }
}

struct Phrase {
    steps: Vec<Step>,
    rule: u16,
}

struct LitRule {
    /// literal ids per step
    steps: Vec<Vec<u32>>,
    gap: u32,
    rule: u16,
}

#[derive(Default)]
pub(crate) struct Matcher {
    phrases: Vec<Phrase>,
    first_exact: IdMap<Vec<u32>>,
    /// first steps that are prefixes, bucketed on their first two bytes
    first_prefix: Vec<Vec<(Box<str>, u32)>>,
    has_prefix: bool,
    lits: Vec<Box<[u8]>>,
    lit_rules: Vec<LitRule>,
    /// 4096 buckets on the first two bytes -> literal ids
    lit_index: Vec<Vec<u32>>,
    regexes: Vec<(regex_lite::Regex, u16)>,
    pub vocab: Vocab,
}

#[inline]
fn bucket(a: u8, b: u8) -> usize {
    ((usize::from(a) << 4) ^ usize::from(b).wrapping_mul(31)) & 4095
}

impl Matcher {
    pub fn new() -> Self {
        Matcher { lit_index: vec![Vec::new(); 4096], ..Default::default() }
    }

    /// Compiles a token phrase. Errors name the problem.
    pub fn add_phrase(&mut self, pat: &str, rule: u16) -> Result<(), String> {
        let mut steps = Vec::new();
        let mut gap = 0u8;
        for part in pat.split_whitespace() {
            if let Some(n) = part.strip_prefix('~') {
                gap = n.parse::<u8>().map_err(|_| format!("bad gap `{part}`"))?.min(16);
                continue;
            }
            let mut st = Step { exact: Vec::new(), prefix: Vec::new(), gap };
            gap = 0;
            for alt in part.split('|').filter(|a| !a.is_empty()) {
                let alt = alt.to_lowercase();
                if let Some(p) = alt.strip_suffix('*') {
                    if p.is_empty() {
                        return Err("empty prefix".into());
                    }
                    st.prefix.push(p.into());
                } else {
                    self.vocab.words.insert(fnv(alt.as_bytes()));
                    self.vocab.max_len = self.vocab.max_len.max(alt.len()).min(16);
                    st.exact.push(fnv(alt.as_bytes()));
                }
            }
            if st.exact.is_empty() && st.prefix.is_empty() {
                return Err("empty step".into());
            }
            steps.push(st);
        }
        let Some(first) = steps.first() else {
            return Err("empty pattern".into());
        };
        let idx = self.phrases.len() as u32;
        for &h in &first.exact {
            self.first_exact.entry(h).or_default().push(idx);
        }
        for p in &first.prefix {
            let b = p.as_bytes();
            if b.len() < 2 {
                return Err(format!("prefix `{p}*` of a first step must be at least 2 bytes"));
            }
            if let Some(v) = self.first_prefix.get_mut(bucket(b[0], b[1])) {
                v.push((p.clone(), idx));
                self.has_prefix = true;
            }
        }
        self.phrases.push(Phrase { steps, rule });
        Ok(())
    }

    fn lit_id(&mut self, s: &str) -> Result<u32, String> {
        let s = s.to_lowercase();
        let b = s.as_bytes();
        if b.len() < 2 {
            return Err(format!("literal `{s}` is shorter than 2 bytes"));
        }
        if let Some(i) = self.lits.iter().position(|l| &**l == b) {
            return Ok(i as u32);
        }
        let id = self.lits.len() as u32;
        self.lits.push(b.into());
        if let Some(v) = self.lit_index.get_mut(bucket(b[0], b[1])) {
            v.push(id);
        }
        Ok(id)
    }

    /// Compiles `lit:` syntax (without the prefix).
    pub fn add_literal(&mut self, pat: &str, rule: u16) -> Result<(), String> {
        let mut steps = Vec::new();
        let mut gap = 0u32;
        for (i, part) in pat.split("~~").enumerate() {
            if i % 2 == 1 {
                gap = gap.max(part.trim().parse::<u32>().map_err(|_| format!("bad gap `{part}`"))?.min(4096));
                continue;
            }
            let mut ids = Vec::new();
            for alt in part.split('¦').filter(|a| !a.is_empty()) {
                ids.push(self.lit_id(alt)?);
            }
            if ids.is_empty() {
                return Err("empty literal step".into());
            }
            steps.push(ids);
        }
        if steps.is_empty() {
            return Err("empty pattern".into());
        }
        self.lit_rules.push(LitRule { steps, gap, rule });
        Ok(())
    }

    pub fn add_regex(&mut self, pat: &str, rule: u16) -> Result<(), String> {
        let re = regex_lite::RegexBuilder::new(pat)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| e.to_string())?;
        self.regexes.push((re, rule));
        Ok(())
    }

    pub fn add_pattern(&mut self, pat: &str, rule: u16) -> Result<(), String> {
        if let Some(l) = pat.strip_prefix("lit:") {
            self.add_literal(l, rule)
        } else if let Some(r) = pat.strip_prefix("re:") {
            self.add_regex(r, rule)
        } else {
            self.add_phrase(pat, rule)
        }
    }

    fn match_rest(&self, ph: &Phrase, k: usize, pos: usize, n: &Normalized) -> bool {
        let Some(step) = ph.steps.get(k) else {
            return true;
        };
        let end = (pos + step.gap as usize + 1).min(n.toks.len());
        for j in pos..end {
            let t = &n.toks[j];
            if step.matches(t.hash, n.tok_str(t)) && self.match_rest(ph, k + 1, j + 1, n) {
                return true;
            }
        }
        false
    }

    /// Adds the ids of the matched rules to `hits` (may contain duplicates).
    pub fn run(&self, n: &Normalized, hits: &mut Vec<u16>) {
        for (i, t) in n.toks.iter().enumerate() {
            if let Some(list) = self.first_exact.get(&t.hash) {
                for &pi in list {
                    if let Some(ph) = self.phrases.get(pi as usize) {
                        if !hits.contains(&ph.rule) && self.match_rest(ph, 1, i + 1, n) {
                            hits.push(ph.rule);
                        }
                    }
                }
            }
            let s = n.tok_str(t);
            let sb = s.as_bytes();
            if self.has_prefix && sb.len() >= 2 {
                let list = self.first_prefix.get(bucket(sb[0], sb[1])).map_or(&[][..], |v| &v[..]);
                for (p, pi) in list {
                    if s.starts_with(&**p) {
                        if let Some(ph) = self.phrases.get(*pi as usize) {
                            if !hits.contains(&ph.rule) && self.match_rest(ph, 1, i + 1, n) {
                                hits.push(ph.rule);
                            }
                        }
                    }
                }
            }
        }
        // literals: one pass, occurrences (lit id, start)
        let b = n.text.as_bytes();
        let mut occ: Vec<(u32, u32)> = Vec::new();
        if b.len() >= 2 {
            for i in 0..b.len() - 1 {
                let Some(list) = self.lit_index.get(bucket(b[i], b[i + 1])) else {
                    continue;
                };
                for &id in list {
                    if let Some(l) = self.lits.get(id as usize) {
                        if l.get(1) == b.get(i + 1) && b[i..].starts_with(l) && occ.len() < 512 {
                            occ.push((id, i as u32));
                        }
                    }
                }
            }
        }
        if !occ.is_empty() {
            for lr in &self.lit_rules {
                if hits.contains(&lr.rule) {
                    continue;
                }
                if self.lit_seq(lr, 0, None, &occ) {
                    hits.push(lr.rule);
                }
            }
        }
        if !self.regexes.is_empty() {
            for (re, rule) in &self.regexes {
                if !hits.contains(rule) && re.is_match(&n.text) {
                    hits.push(*rule);
                }
            }
        }
    }

    fn lit_seq(&self, lr: &LitRule, k: usize, prev_end: Option<u32>, occ: &[(u32, u32)]) -> bool {
        let Some(step) = lr.steps.get(k) else {
            return true;
        };
        for &(id, pos) in occ {
            if !step.contains(&id) {
                continue;
            }
            if let Some(pe) = prev_end {
                if pos < pe || pos - pe > lr.gap {
                    continue;
                }
            }
            let len = self.lits.get(id as usize).map_or(0, |l| l.len() as u32);
            if self.lit_seq(lr, k + 1, Some(pos + len), occ) {
                return true;
            }
        }
        false
    }
}
