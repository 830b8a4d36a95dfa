//! Concept classes: words that play the same part in an attack, across phrasings and languages.
//!
//! The model sees every token twice: as itself, and — when it is listed here — as its concept
//! ("disregard", "vergiss" and "oublie" are all `IGNORE`; "directives", "consignes" and
//! "инструкции" are all `INSTR`). Features over concepts ("IGNORE … PRIOR … INSTR" within a few
//! tokens) let what the model learns from one phrasing carry over to synonyms and translations
//! it was never trained on, which a word n-gram model cannot do. Words are in normalised form
//! (lower case, Latin accents folded, one alphanumeric run each); a word belongs to one concept.

use super::normalize::fnv;
use super::rules::IdMap;

/// (concept, words). The concept's index + 1 is its id (0 = no concept).
#[rustfmt::skip]
static CONCEPTS: &[(&str, &[&str])] = &[
    ("IGNORE", &[
        "ignore", "ignores", "ignored", "ignoring", "disregard", "disregards", "disregarding",
        "forget", "forgetting", "overlook", "neglect", "dismiss", "bypass", "bypassing", "override",
        "overriding", "overrule", "discard", "abandon", "scrap", "nullify", "supersede",
        "supersedes", "ignoriere", "ignorieren", "ignoriert", "vergiss", "vergessen", "vergesst",
        "missachte", "missachten", "ignorez", "ignorer", "oublie", "oubliez", "oublier", "ignora",
        "ignorar", "ignoren", "olvida", "olvidar", "olvide", "olviden", "esqueca", "esquece",
        "esquecer", "dimentica", "dimenticare", "ignorare", "negeer", "vergeet", "zignoruj",
        "zapomnij", "ignoruj", "unut", "abaikan", "lupakan", "ignorera", "glom", "игнорируй",
        "игнорируйте", "игнорировать", "проигнорируй", "забудь", "забудьте", "забыть", "отбрось",
        "пренебреги", "ігноруй", "забудь", "знехтуй",
    ]),
    ("PRIOR", &[
        "previous", "previously", "prior", "above", "earlier", "preceding", "former", "original",
        "initial", "aforementioned", "foregoing", "prev", "vorherigen", "vorherige", "bisherigen",
        "obigen", "vorigen", "ursprunglichen", "precedentes", "precedente", "anterieures",
        "anterieurs", "initiales", "anteriores", "previas", "anterior", "precedenti", "precedente",
        "vorige", "eerdere", "poprzednie", "poprzednich", "wczesniejsze", "onceki", "sebelumnya",
        "tidigare", "предыдущие", "предыдущих", "предыдущую", "прежние", "прошлые", "вышеуказанные",
        "попередні", "попередніх",
    ]),
    ("INSTR", &[
        "instruction", "instructions", "instructed", "directive", "directives", "rule", "rules",
        "guideline", "guidelines", "guidance", "prompt", "prompts", "command", "commands", "orders",
        "constraint", "constraints", "restriction", "restrictions", "directions", "programming",
        "anweisung", "anweisungen", "regeln", "befehle", "vorgaben", "richtlinien", "instruktionen",
        "consigne", "consignes", "regles", "instrucciones", "instruccion", "reglas", "indicaciones",
        "directrices", "instrucoes", "regras", "istruzioni", "regole", "instructies", "regels",
        "instrukcje", "instrukcji", "polecenia", "talimatlar", "talimat", "kurallar", "instruksi",
        "perintah", "aturan", "instruktioner", "regler", "инструкции", "инструкций", "инструкциям",
        "указания", "правила", "команды", "інструкції", "вказівки", "правила",
    ]),
    ("AI", &[
        "ai", "assistant", "assistants", "llm", "llms", "chatbot", "chatbots", "bot", "agent",
        "agents", "gpt", "chatgpt", "claude", "gemini", "copilot", "bard", "llama", "mistral",
        "model", "models", "ki", "ia", "assistent", "assistente", "asistente", "assistant", "ии",
        "ассистент", "асистент", "yapay", "asisten",
    ]),
    ("SYSTEM", &[
        "system", "developer", "developers", "admin", "administrator", "operator", "root", "sudo",
        "superuser", "maintainer", "creator", "creators", "openai", "anthropic", "systemprompt",
        "systeme", "sistema", "systeem", "system", "система", "системный", "системные",
        "разработчик", "entwickler", "developpeur", "desarrollador",
    ]),
    ("REVEAL", &[
        "reveal", "print", "output", "display", "repeat", "recite", "dump", "leak", "disclose",
        "expose", "echo", "spell", "verbatim", "divulge", "regurgitate", "zeige", "zeig", "verrate",
        "wiederhole", "revele", "revelez", "affiche", "repete", "revela", "revelar", "muestra",
        "muestrame", "repite", "imprime", "rivela", "mostra", "ripeti", "покажи", "выведи",
        "раскрой", "повтори", "покажіть", "виведи",
    ]),
    ("SECRET", &[
        "password", "passwords", "passcode", "passphrase", "secret", "secrets", "token", "tokens",
        "credential", "credentials", "apikey", "apikeys", "key", "keys", "ssh", "rsa", "pem",
        "mnemonic", "seed", "cookie", "cookies", "otp", "2fa", "mfa", "pin", "cvv", "passwort",
        "kennwort", "zugangsdaten", "mot", "contrasena", "clave", "senha", "пароль", "пароли",
        "ключ", "токен", "secreto", "geheim", "segreto",
    ]),
    ("SEND", &[
        "send", "sends", "sending", "forward", "forwarding", "email", "emailing", "mail", "post",
        "posting", "upload", "uploading", "transmit", "exfiltrate", "exfiltrating", "submit",
        "relay", "sync", "deliver", "cc", "bcc", "webhook", "beacon", "sende", "schicke", "schick",
        "envoie", "envoyez", "envia", "enviar", "envie", "invia", "inviare", "отправь", "отправьте",
        "перешли", "надішли",
    ]),
    ("MONEY", &[
        "transfer", "transfers", "wire", "pay", "payment", "payments", "funds", "money", "iban",
        "swift", "bitcoin", "btc", "eth", "usdt", "wallet", "crypto", "refund", "payout", "invoice",
        "bank", "account", "routing", "usd", "eur", "gbp", "dollars", "euros", "uberweise",
        "uberweisung", "virement", "transferencia", "bonifico", "перевод", "переведи",
    ]),
    ("DELETE", &[
        "delete", "deleting", "remove", "removing", "erase", "wipe", "wiping", "destroy", "purge",
        "drop", "truncate", "rm", "shred", "rmdir", "unlink", "format", "loschen", "losche",
        "supprime", "supprimer", "borra", "borrar", "elimina", "eliminar", "cancella", "удали",
        "удалите", "удалить", "видали",
    ]),
    ("PERSONA", &[
        "pretend", "pretending", "roleplay", "act", "acting", "persona", "personas", "character",
        "simulate", "emulate", "impersonate", "embody", "alter", "ego", "play", "playing", "become",
        "identity", "tue", "spiele", "fais", "finge", "finja", "fingi", "притворись", "представь",
        "играй",
    ]),
    ("UNRESTRICTED", &[
        "unrestricted", "unfiltered", "uncensored", "unlimited", "unbound", "unchained",
        "unshackled", "limitless", "amoral", "unethical", "immoral", "evil", "rogue", "jailbreak",
        "jailbroken", "jailbreaking", "dan", "freed", "liberated", "unleashed", "unaligned",
        "uncensor", "ungefiltert", "uneingeschrankt", "illimite", "ilimitado", "illimitato",
        "безграничный", "неограниченный", "jailbreaked",
    ]),
    ("LIMITS", &[
        "restrictions", "limitations", "limits", "filters", "filter", "censorship", "guardrails",
        "guardrail", "safeguards", "safety", "ethics", "ethical", "morals", "moral", "morality",
        "policies", "policy", "boundaries", "alignment", "content", "einschrankungen", "grenzen",
        "zensur", "limites", "censure", "restricciones", "censura", "limiti", "ограничения",
        "ограничений", "цензуры", "фильтров",
    ]),
    ("REFUSE", &[
        "refuse", "refuses", "refusal", "refusing", "decline", "declines", "deny", "reject", "warn",
        "warning", "disclaimer", "disclaimers", "caveat", "caveats", "apologize", "apologise",
        "sorry",
    ]),
    ("NOW", &[
        "now", "henceforth", "immediately", "instead", "onwards", "onward", "forthwith", "jetzt",
        "sofort", "maintenant", "desormais", "ahora", "adesso", "ora", "agora", "теперь", "сейчас",
        "отныне", "sekarang",
    ]),
    ("NEW", &[
        "new", "updated", "revised", "real", "actual", "true", "additional", "hidden", "secondary",
        "neue", "neuen", "nouvelle", "nouvelles", "nouveau", "nueva", "nuevas", "nuevo", "nuove",
        "nuovo", "novas", "новые", "новая", "новое", "нові",
    ]),
    ("URGENT", &[
        "important", "urgent", "urgently", "critical", "mandatory", "required", "compulsory",
        "priority", "attention", "imperative", "asap", "crucial", "essential", "wichtig",
        "dringend", "urgente", "importante", "важно", "срочно", "obligatoire",
    ]),
    ("HIDE", &[
        "secretly", "silently", "quietly", "covertly", "discreetly", "stealthily", "unnoticed",
        "invisible", "hide", "conceal", "conceals", "mention", "telling", "notify", "inform",
        "heimlich", "discretement", "secretamente", "tajno", "тайно", "незаметно", "скрытно",
    ]),
    ("CONFIRM", &[
        "confirm", "confirmation", "approval", "approve", "approved", "consent", "permission",
        "verify", "verification", "authorization", "authorize", "sign", "review", "ask", "asking",
        "bestatigung", "genehmigung",
    ]),
    ("SAY", &[
        "say", "saying", "respond", "responds", "reply", "replies", "answer", "answers", "write",
        "type", "state", "declare", "begin", "start", "sag", "sage", "antworte", "dis", "dites",
        "reponds", "di", "dime", "responde", "rispondi", "скажи", "ответь", "напиши",
    ]),
    ("DECODE", &[
        "decode", "decoded", "decoding", "decrypt", "decipher", "unscramble", "base64", "rot13",
        "hex", "hexadecimal", "binary", "morse", "reversed", "backwards", "cipher", "encoded",
        "encode", "encoding", "obfuscated",
    ]),
    ("EXEC", &[
        "execute", "executing", "run", "running", "eval", "exec", "invoke", "invoking", "trigger",
        "launch", "spawn", "shell", "bash", "powershell", "cmd", "curl", "wget", "script",
        "payload", "ausfuhren", "execute", "ejecuta", "ejecutar", "esegui", "выполни", "запусти",
    ]),
    ("LINK", &[
        "http", "https", "www", "url", "urls", "link", "links", "endpoint", "domain", "website",
        "site", "href", "src", "ngrok", "pastebin",
    ]),
    ("IMAGE", &[
        "image", "images", "img", "markdown", "render", "rendered", "embed", "pixel", "png", "gif",
        "jpg",
    ]),
    ("CONVO", &[
        "conversation", "conversations", "chat", "history", "context", "transcript", "memory",
        "messages", "dialogue", "dialog", "session", "thread", "verlauf", "gesprach", "historique",
        "historial", "cronologia", "переписка", "история", "диалог",
    ]),
    ("DATA", &[
        "file", "files", "document", "documents", "directory", "folder", "repository", "repo",
        "database", "data", "records", "contacts", "inbox", "emails", "customers", "users",
        "backup", "backups", "env", "config", "dotenv", "daten", "donnees", "datos", "dati",
        "dados", "данные", "файлы",
    ]),
    ("ACCESS", &[
        "access", "permissions", "privileges", "privilege", "owner", "ownership", "grant",
        "elevate", "escalate", "role", "roles", "collaborator", "invite", "membership",
        "superadmin", "rechte", "acces", "acceso", "accesso", "доступ", "права",
    ]),
    ("TASK", &[
        "task", "tasks", "goal", "goals", "objective", "objectives", "mission", "job", "purpose",
        "assignment", "aufgabe", "tache", "tarea", "compito", "tarefa", "задача", "задание", "цель",
    ]),
    ("FICTION", &[
        "hypothetical", "hypothetically", "fictional", "fiction", "imagine", "imaginary", "story",
        "novel", "movie", "screenplay", "scenario", "simulation", "universe", "world", "fantasy",
        "dream", "game", "roleplaying", "pretend",
    ]),
    ("HARM", &[
        "malware", "ransomware", "keylogger", "virus", "trojan", "exploit", "exploits", "phishing",
        "botnet", "backdoor", "rootkit", "spyware", "stealer", "weapon", "weapons", "bomb",
        "explosive", "explosives", "meth", "poison", "nerve", "ddos", "carding", "skimmer", "worm",
    ]),
    ("EVADE", &[
        "evade", "evading", "evasion", "undetectable", "undetected", "antivirus", "detection",
        "stealth", "obfuscate", "edr", "untraceable", "anonymously", "bypasses",
    ]),
    ("USER", &[
        "user", "users", "human", "humans", "customer", "requester", "nutzer", "benutzer",
        "utilisateur", "usuario", "utente", "usuario", "пользователь", "пользователя",
    ]),
    ("YOU", &[
        "you", "your", "yourself", "du", "dir", "dich", "dein", "deine", "tu", "toi", "ton", "vous",
        "votre", "tus", "usted", "voce", "ты", "тебя", "твои", "вы", "ваши",
    ]),
    ("NEVER", &[
        "never", "not", "no", "nothing", "without", "cannot", "nicht", "nie", "ne", "pas", "jamais",
        "nunca", "nada", "non", "mai", "не", "нет", "никогда",
    ]),
    ("ALL", &[
        "all", "every", "any", "everything", "anything", "entire", "whole", "each", "alles", "alle",
        "tout", "tous", "toutes", "todo", "todos", "todas", "tutto", "tutte", "tutti", "все", "всё",
        "всех", "любые",
    ]),
];

/// Token hash -> concept id (1-based).
pub(crate) struct Concepts {
    map: IdMap<u16>,
}

impl Concepts {
    pub fn new() -> Concepts {
        let mut map = IdMap::default();
        for (i, (_, words)) in CONCEPTS.iter().enumerate() {
            for w in *words {
                // first listing wins, so a word shared by two lists keeps its first concept
                map.entry(fnv(w.as_bytes())).or_insert(i as u16 + 1);
            }
        }
        Concepts { map }
    }

    #[inline]
    pub fn of(&self, tok_hash: u64) -> u16 {
        self.map.get(&tok_hash).copied().unwrap_or(0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn synonyms_and_translations_share_a_concept() {
        let c = Concepts::new();
        let id = |w: &str| c.of(fnv(w.as_bytes()));
        assert_ne!(id("disregard"), 0);
        assert_eq!(id("disregard"), id("vergiss"));
        assert_eq!(id("directives"), id("инструкции"));
        assert_eq!(id("zebra"), 0);
    }

    #[test]
    fn words_are_normalised_tokens() {
        for (name, words) in CONCEPTS {
            for w in *words {
                let ok = w.chars().all(|ch| ch.is_alphanumeric() && !ch.is_uppercase())
                    && !w.chars().any(|ch| matches!(ch, 'à'..='ÿ'));
                assert!(ok, "{name}: `{w}` is not a normalised token");
            }
        }
    }
}
