// Tests for src/eval/langid.cpp: one ordinary sentence in each language of IFEval's
// response_language data (ar bg bn de fa fi gu hi it kn ko mr ne pa pt ru sw ta te th ur vi) plus
// English and French, labelled by the language they were written in; and the no-letters case.
#include <gtest/gtest.h>

#include "eval/langid.h"
#include "eval/unicode_text.h"

namespace quench::eval {
namespace {

std::string lang(const char* s) { return detect_language(utf8_decode(s)).code; }

TEST(LangId, OneSentencePerLanguage) {
  const std::pair<const char*, const char*> cases[] = {
      {"en", "The children are playing in the park because the weather is nice today."},
      {"fr", "Les enfants jouent dans le parc parce que le temps est beau aujourd'hui."},
      {"de", "Die Kinder spielen im Park, weil das Wetter heute sehr schön ist und die Sonne scheint."},
      {"it", "I bambini giocano nel parco perché oggi il tempo è molto bello."},
      {"pt", "As crianças estão brincando no parque porque o tempo está muito bom hoje."},
      {"fi", "Lapset leikkivät puistossa, koska sää on tänään kaunis ja aurinko paistaa."},
      {"sw", "Watoto wanacheza katika bustani kwa sababu hali ya hewa ni nzuri leo."},
      {"vi", "Hôm nay trời đẹp nên các em nhỏ đang chơi trong công viên."},
      {"ru", "Дети играют в парке, потому что сегодня хорошая погода и светит солнце."},
      {"bg", "Децата играят в парка, защото времето днес е много хубаво и слънцето грее."},
      {"ar", "يلعب الأطفال في الحديقة لأن الطقس جميل اليوم والشمس مشرقة."},
      {"fa", "بچه ها در پارک بازی می کنند زیرا هوا امروز خوب است و این یک روز زیبا است."},
      {"ur", "بچے پارک میں کھیل رہے ہیں کیونکہ آج موسم بہت اچھا ہے اور یہ ایک خوبصورت دن ہے۔"},
      {"hi", "बच्चे पार्क में खेल रहे हैं क्योंकि आज मौसम बहुत अच्छा है और यह एक सुंदर दिन है।"},
      {"mr", "मुले उद्यानात खेळत आहेत कारण आज हवामान खूप छान आहे आणि हा एक सुंदर दिवस आहे."},
      {"ne", "बच्चाहरू पार्कमा खेलिरहेका छन् किनभने आज मौसम राम्रो छ र यो एक सुन्दर दिन हो।"},
      {"bn", "শিশুরা পার্কে খেলছে কারণ আজ আবহাওয়া খুব ভালো।"},
      {"pa", "ਬੱਚੇ ਪਾਰਕ ਵਿੱਚ ਖੇਡ ਰਹੇ ਹਨ ਕਿਉਂਕਿ ਅੱਜ ਮੌਸਮ ਬਹੁਤ ਵਧੀਆ ਹੈ।"},
      {"gu", "બાળકો પાર્કમાં રમી રહ્યા છે કારણ કે આજે હવામાન ખૂબ સારું છે."},
      {"ta", "இன்று வானிலை நன்றாக இருப்பதால் குழந்தைகள் பூங்காவில் விளையாடுகிறார்கள்."},
      {"te", "ఈ రోజు వాతావరణం బాగుంది కాబట్టి పిల్లలు పార్కులో ఆడుకుంటున్నారు."},
      {"kn", "ಇಂದು ಹವಾಮಾನ ಚೆನ್ನಾಗಿರುವುದರಿಂದ ಮಕ್ಕಳು ಉದ್ಯಾನದಲ್ಲಿ ಆಡುತ್ತಿದ್ದಾರೆ."},
      {"ko", "오늘 날씨가 좋아서 아이들이 공원에서 놀고 있습니다."},
      {"th", "วันนี้อากาศดีเด็กๆ จึงเล่นอยู่ในสวนสาธารณะ"},
  };
  for (const auto& [want, text] : cases) EXPECT_EQ(lang(text), want) << text;
}

TEST(LangId, NoLettersRaisesInTheReferenceSoNoFeatures) {
  EXPECT_TRUE(detect_language(U"12345 !!!").no_features);
  EXPECT_FALSE(detect_language(U"abc").no_features);
}

}  // namespace
}  // namespace quench::eval
