// quench/eval/langid.cpp: script ranges + stopword profiles language identifier (see langid.h).
#include "eval/langid.h"

#include <array>
#include <map>
#include <set>
#include <vector>

#include "eval/unicode_text.h"

namespace quench::eval {

namespace {

enum class Script { kLatin, kCyrillic, kArabic, kDevanagari, kBengali, kGurmukhi, kGujarati, kTamil,
                    kTelugu, kKannada, kMalayalam, kThai, kHangul, kKana, kHan, kGreek, kHebrew, kOther };

Script script_of(char32_t c) {
  if (c < 0x80 || (c >= 0xC0 && c <= 0x24F) || (c >= 0x1E00 && c <= 0x1EFF)) return Script::kLatin;
  if (c >= 0x370 && c <= 0x3FF) return Script::kGreek;
  if (c >= 0x400 && c <= 0x52F) return Script::kCyrillic;
  if (c >= 0x590 && c <= 0x5FF) return Script::kHebrew;
  if ((c >= 0x600 && c <= 0x6FF) || (c >= 0x750 && c <= 0x77F) || (c >= 0xFB50 && c <= 0xFEFF)) return Script::kArabic;
  if (c >= 0x900 && c <= 0x97F) return Script::kDevanagari;
  if (c >= 0x980 && c <= 0x9FF) return Script::kBengali;
  if (c >= 0xA00 && c <= 0xA7F) return Script::kGurmukhi;
  if (c >= 0xA80 && c <= 0xAFF) return Script::kGujarati;
  if (c >= 0xB80 && c <= 0xBFF) return Script::kTamil;
  if (c >= 0xC00 && c <= 0xC7F) return Script::kTelugu;
  if (c >= 0xC80 && c <= 0xCFF) return Script::kKannada;
  if (c >= 0xD00 && c <= 0xD7F) return Script::kMalayalam;
  if (c >= 0xE00 && c <= 0xE7F) return Script::kThai;
  if ((c >= 0x1100 && c <= 0x11FF) || (c >= 0x3130 && c <= 0x318F) || (c >= 0xAC00 && c <= 0xD7AF)) return Script::kHangul;
  if (c >= 0x3040 && c <= 0x30FF) return Script::kKana;
  if ((c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF)) return Script::kHan;
  return Script::kOther;
}

struct Profile {
  const char* code;
  Script script;
  const char* stopwords;  // space-separated, lowercase
};

// Most frequent function words per language (common knowledge lists, written for this file).
const Profile kProfiles[] = {
    {"en", Script::kLatin, "the and of to a in is it that was for on are with as i be at by this have from or had not but what all were when we there can an your which their if do will each about how up out them then she many some so these would other into has more her two like him see time could no make than first been its who now people my made over did down only way find use may water long little very after words called just where most know get through back much before go good new write our me man too any day same right look think also around another came come work three word must because does part even place well such here take why things help put years different away again off went old number great tell men say small every found still between name should home big give air line set own under read last never us left end along while might next sound below saw something thought both few those always looked show large often together asked house don't world going want school important until form food keep children feet land side without boy once animals life enough took sometimes four head above kind began almost live page got earth need far hand high year mother light parts country father let night following picture being study second eyes soon times story boys since white days ever paper hard near sentence better best across during today others however sure means knew it's try told young miles sun ways thing whole hear example heard several change answer room sea against top turned learn point city play toward five using himself usually weather sunny warm beach"},
    {"de", Script::kLatin, "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen so zum war haben nur oder aber vor zur bis mehr durch man sein wurde sei ich wir ihr uns sehr heute wetter"},
    {"fr", Script::kLatin, "le de la et les des un une du en est que pour dans qui pas au sur ne se plus par avec il elle ce sont nous vous je mais ou comme on tout être aux leur ses cette très bien aujourd'hui temps beau nos amis bonjour monde suis heureux voir"},
    {"es", Script::kLatin, "de la que el en y los se del las un por con no una su para es al lo como más pero sus le ya o este sí porque esta entre cuando muy sin sobre también me hasta hay donde quien desde todo nos durante todos uno les ni contra otros ese eso ante ellos e esto mí antes algunos qué unos yo otro otras otra él tanto esa estos mucho quienes nada muchos cual poco ella estar estas algunas algo nosotros hoy"},
    {"it", Script::kLatin, "di e il la che in a per un è non del le si una con i da sono alla lo al ma come più gli anche ha nel questo della delle dei se ci mi io tu lui noi voi loro essere molto sua suo cui tra dopo oggi ho hai sul nella degli questa quando perché"},
    {"pt", Script::kLatin, "de a o que e do da em um para é com não uma os no se na por mais as dos como mas foi ao ele das tem à seu sua ou ser quando muito há nos já está eu também só pelo pela até isso ela entre era depois sem mesmo aos ter seus quem nas me esse eles estão você tinha foram essa num nem suas meu às minha têm numa pelos elas havia seja qual será nós hoje"},
    {"nl", Script::kLatin, "de en van ik te dat die in een hij het niet zijn is was op aan met als voor had er maar om hem dan zou of wat mijn men dit zo door over ze zich bij ook tot je mij uit der daar haar naar heb hoe heeft hebben deze u want nog zal me zij nu ge geen omdat iets worden toch al waren veel meer doen toen moet ben zonder kan hun dus alles onder ja eens hier wie werd altijd doch wordt wezen kunnen ons zelf tegen na reeds wil kon niets uw iemand geweest andere"},
    {"sv", Script::kLatin, "och det att i en jag hon som han på den med var sig för så till är men ett om hade de av icke mig du henne då sin nu har inte hans honom skulle hennes där min man ej vid kunde något från ut när efter upp vi dem vara vad över än dig kan sina här ha mot alla under någon eller allt mycket sedan ju denna själv detta åt utan varit hur ingen mitt ni bli blev oss din dessa några deras blir mina samma vilken er sådan vår blivit dess inom mellan sådant varför varje vilka ditt vem vilket sitta sådana vart dina vars vårt våra ert era vilkas"},
    {"fi", Script::kLatin, "ja on ei se että hän oli ovat mutta kun niin joka tai kuin myös sen ole jos mitä nyt vain minä sinä me te he tämä tuo ne mikä kuka siitä siinä sitä hänen olla ollut voi kaikki sekä jo vielä koska mukaan sitten eli kanssa jälkeen nämä noin sekä pitää"},
    {"sw", Script::kLatin, "na ya wa kwa katika ni za la kuwa hii huo hiyo cha pia au lakini kama yake wake kila sana hata bila baada juu chini ndani nje sasa tu hivyo ambao ambayo ambapo wao sisi ninyi mimi wewe yeye hapa pale leo kesho jana"},
    {"vi", Script::kLatin, "và của là có không được cho một những các trong người với này đã để khi từ thì đến như về ra cũng sẽ năm làm nhiều nhưng rất còn theo nên vào lại đó tôi bạn chúng hơn hôm nay"},
    {"id", Script::kLatin, "yang dan di ini itu dengan untuk tidak dari dalam akan pada juga ke karena ada oleh saya mereka sudah atau bisa kita kami telah lebih hanya seperti bahwa harus"},
    {"tr", Script::kLatin, "ve bir bu da de için ile çok ne daha gibi olan ama en kadar sonra ben sen o biz siz onlar var yok her mi mı değil olarak"},
    {"pl", Script::kLatin, "i w nie na się z do że to jest o jak ale po co tak za od przez czy już jego ich ja ty on ona my wy oni być był była było tylko tym także który która które"},
    {"ro", Script::kLatin, "și în de la cu o a pe un nu care din să se este mai ce sunt pentru dar sau fost ca acest această"},
    {"ru", Script::kCyrillic, "и в не на я что с он как а то все она так его но да ты к у же вы за бы по только ее мне было вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был него до вас нибудь опять уж вам ведь там потом себя ничего ей может они тут где есть надо ней для мы тебя их чем была сам чтобы без будто чего раз тоже себе под будет ж тогда кто этот того потому этого какой совсем ним здесь этом один почти мой тем чтобы нее сейчас были куда зачем всех никогда можно при наконец два об другой хоть после над больше тот через эти нас про всего них какая много разве три эту моя впрочем хорошо свою этой перед иногда лучше чуть том нельзя такой им более всегда конечно всю между это"},
    {"bg", Script::kCyrillic, "и в на се да не за от с е са то това че по като до ще които си но който му най той тя те ние вие аз ти той има беше бил била било към след при много още във със кога защото тези това е"},
    {"uk", Script::kCyrillic, "і в не на що з він як а то все вона так його але та ти до у же ви за би по тільки її мені було від мене ще ні о із йому коли навіть чи якщо вже або бути був до вас там потім себе є для ми тебе їх це цей"},
    {"ar", Script::kArabic, "في من على أن إلى عن مع هذا هذه التي الذي كان ما لا هو هي و ثم أو كل بعد قد عند بين لم"},
    {"fa", Script::kArabic, "و در به از که این را با است برای آن یک تا می هم شده بود شد نیز کرد ما من او هر ها های"},
    {"ur", Script::kArabic, "کے میں کی ہے اور کو سے نے کا ہیں یہ ایک پر بھی تھا کہ وہ لیے ہو تھے جو"},
    {"hi", Script::kDevanagari, "के है में की और को से का हैं एक यह पर भी नहीं था कि लिए इस वह हो तो ही थे जो कर गया किया करने साथ"},
    {"mr", Script::kDevanagari, "आहे आणि या व हे ते आहेत मध्ये केले होते त्या करण्यासाठी ही तो नाही आपण त्याचे त्यांच्या म्हणून असे होता झाली"},
    {"ne", Script::kDevanagari, "छ र मा हो गर्न पनि यो छन् भएको लागि थियो गरेको हुन्छ त्यो तथा गर्ने भने उनले हुने रहेको"},
};

}  // namespace

LanguageGuess detect_language(std::u32string_view text) {
  LanguageGuess g;
  std::map<Script, std::size_t> counts;
  std::size_t letters = 0;
  for (char32_t c : text) {
    if (!is_alpha_char(c)) continue;
    ++letters;
    ++counts[script_of(c)];
  }
  if (letters == 0) {
    g.no_features = true;
    g.code = "unknown";
    return g;
  }
  Script dom = Script::kOther;
  std::size_t best = 0;
  for (auto& [s, n] : counts)
    if (n > best) {
      best = n;
      dom = s;
    }
  switch (dom) {
    case Script::kBengali: g.code = "bn"; return g;
    case Script::kGurmukhi: g.code = "pa"; return g;
    case Script::kGujarati: g.code = "gu"; return g;
    case Script::kTamil: g.code = "ta"; return g;
    case Script::kTelugu: g.code = "te"; return g;
    case Script::kKannada: g.code = "kn"; return g;
    case Script::kMalayalam: g.code = "ml"; return g;
    case Script::kThai: g.code = "th"; return g;
    case Script::kHangul: g.code = "ko"; return g;
    case Script::kGreek: g.code = "el"; return g;
    case Script::kHebrew: g.code = "he"; return g;
    case Script::kKana: g.code = "ja"; return g;
    case Script::kHan: g.code = counts.count(Script::kKana) ? "ja" : "zh-cn"; return g;
    case Script::kOther: g.code = "unknown"; return g;
    default: break;
  }
  // Shared script: vote with stopwords (lowercased whitespace tokens, edge punctuation trimmed).
  std::map<std::string, double> score;
  std::vector<std::string> words;
  for (auto w : py_split_ws(py_lower(text))) {
    std::size_t a = 0, b = w.size();
    while (a < b && !py_is_word(w[a]) && w[a] != '\'') ++a;
    while (b > a && !py_is_word(w[b - 1])) --b;
    if (a < b) words.push_back(utf8_encode(w.substr(a, b - a)));
  }
  for (const auto& p : kProfiles) {
    if (p.script != dom) continue;
    std::set<std::string> stop;
    std::string_view all(p.stopwords);
    while (!all.empty()) {
      const auto sp = all.find(' ');
      stop.emplace(all.substr(0, sp));
      if (sp == std::string_view::npos) break;
      all.remove_prefix(sp + 1);
    }
    double s = 0;
    for (const auto& w : words) s += stop.count(w) ? 1.0 : 0.0;
    score[p.code] = s;
  }
  // Letters only one language of the script uses.
  for (char32_t c : text) {
    const char32_t l = to_lower_char(c);
    if (dom == Script::kCyrillic) {
      if (l == U'ы' || l == U'э' || l == U'ё') score["ru"] += 0.5;
      if (l == U'і' || l == U'ї' || l == U'є' || l == U'ґ') score["uk"] += 1.0;
    } else if (dom == Script::kArabic) {
      if (l == U'پ' || l == U'چ' || l == U'ژ' || l == U'گ') { score["fa"] += 0.3; score["ur"] += 0.3; }
      if (l == U'ٹ' || l == U'ڈ' || l == U'ڑ' || l == U'ں' || l == U'ے' || l == U'ھ') score["ur"] += 1.0;
      if (l == U'ة' || l == U'ى') score["ar"] += 0.5;
    } else if (dom == Script::kLatin) {
      if (l == U'ơ' || l == U'ư' || l == U'đ' || l == U'ă' || (l >= 0x1EA0 && l <= 0x1EF9)) score["vi"] += 1.0;
      if (l == U'ß') score["de"] += 1.0;
      if (l == U'ã' || l == U'õ') score["pt"] += 0.5;
      if (l == U'ñ') score["es"] += 0.5;
      if (l == U'ș' || l == U'ț') score["ro"] += 1.0;
    }
  }
  double top = 0;
  for (auto& [code, s] : score)
    if (s > top) {
      top = s;
      g.code = code;
    }
  if (top <= 0) g.code = dom == Script::kDevanagari ? "hi" : dom == Script::kArabic ? "ar" : dom == Script::kCyrillic ? "ru" : "unknown";
  return g;
}

}  // namespace quench::eval
